package io.bitrelay.tests;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.quant.Calibration;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.ChannelStats;
import io.bitrelay.runtime.quant.PackedWeights;
import io.bitrelay.runtime.quant.RangeEstimator;
import io.bitrelay.runtime.quant.RecipeOptions;
import io.bitrelay.runtime.quant.WeightOnlyLinear;
import io.bitrelay.runtime.quant.store.SavedRecipe;
import io.bitrelay.runtime.quant.store.StageFile;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A GPTQ recipe through three worker JVMs: each worker keeps its stage's calibration inputs while the
 * coordinator streams calibration (nothing of it crosses the cluster) and, when the plan arrives, rounds its
 * layers with GPTQ one at a time over them. The saved stages hold GPTQ codes (per-channel grids as round-to-nearest's, codes
 * not), and a restart serves the same tokens from the store without calibrating. As {@code bitrelay eval} by default
 * (issue 19): the weights are on asymmetric grids and the workers record batch-mean activation ranges, one batch per
 * calibration sequence, whatever micro-batches carried them.
 */
class GptqClusterTest {
    private static final int MAX_TOKENS = 6;

    @TempDir
    Path temp;

    @Test
    @Timeout(600)
    void shouldCalibrateRoundWithGptqOnTheWorkersAndRestoreTheStore() throws Exception {
        Path checkpoint = ClusterFixture.writeModel(temp.resolve("model"));
        Path store = temp.resolve("store");
        Map<String, Object> settings = Map.of(
                "bitrelay.quantization.recipe", "w4a16-gptq",
                "bitrelay.quantization.calibration.sequences", 4,
                "bitrelay.quantization.calibration.tokens", 64,
                "bitrelay.quantization.store", store.toString());
        List<int[]> prompts = new ArrayList<>();
        try (OptTokenizer tokenizer = OptTokenizer.load(checkpoint)) {
            for (String prompt : List.of("The capital of France is", "error feedback over columns")) {
                prompts.add(tokenizer.encode(prompt));
            }
        }
        List<SamplingParams> greedy = Collections.nCopies(prompts.size(), SamplingParams.greedy());

        List<int[]> calibrated;
        try (LocalCluster cluster = ClusterFixture.start(checkpoint, "fp16", temp.resolve("logs-1"), settings)) {
            Coordinator.Status status = cluster.status();
            assertTrue(Arrays.asList(status.phases()).contains(io.bitrelay.actors.coordinator.Coordinator.Phase.QUANTIZING), Arrays.toString(status.phases()));
            assertEquals("w4a16-gptq calibrated", status.quantization());
            calibrated = ClusterFixture.generate(cluster, prompts, greedy, MAX_TOKENS);
        }

        SavedRecipe saved = SavedRecipe.read(store);
        assertEquals("w4a16-gptq", saved.recipe());
        assertEquals(3, saved.stages().size(), "the store keeps the three workers' placement: a closing cluster's drains "
                + "rebuild (and save) nothing over the workers about to stop");
        assertEquals(new RecipeOptions(RangeEstimator.MIN_MAX, true, false), saved.options(),
                "asymmetric weights recorded; W4A16 has no activation ranges to record");
        SavedRecipe.Stage first = saved.stages().getFirst();
        int layers = saved.stages().getLast().endLayer();
        try (OptModel base = OptModel.load(checkpoint, new LayerRange(first.firstLayer(), first.endLayer(), layers));
             OptModel stage = StageFile.load(store.resolve(first.file()), base, new StageFile.Identity(saved.fingerprint(),
                     saved.recipe(), saved.alpha(), saved.options(), first.firstLayer(), first.endLayer()), first.crc32c());
             Arena arena = Arena.ofShared()) {
            Linear fp32 = assertInstanceOf(Linear.class, base.weights().layers()[0].fc1());
            PackedWeights gptq = assertInstanceOf(WeightOnlyLinear.class, stage.weights().layers()[0].fc1()).weights();
            assertTrue(gptq.asymmetric(), "bitrelay.quantization.weights = asymmetric reached the workers' GPTQ");
            PackedWeights nearest = PackedWeights.quantize(fp32, 4, 0, true, arena);
            long changed = 0;
            byte[] a = new byte[fp32.inFeatures()];
            byte[] b = new byte[fp32.inFeatures()];
            for (int j = 0; j < fp32.outFeatures(); j++) {
                assertEquals(nearest.scale(j, 0), gptq.scale(j, 0), "row " + j + ": per-channel scale from the row's min and max");
                assertEquals(nearest.zero(j, 0), gptq.zero(j, 0), "row " + j + ": per-channel zero point");
                gptq.unpackRow(j, a);
                nearest.unpackRow(j, b);
                for (int k = 0; k < a.length; k++) {
                    changed += a[k] != b[k] ? 1 : 0;
                }
            }
            double share = changed / (double) ((long) fp32.outFeatures() * fp32.inFeatures());
            System.out.printf("fc1 of layer 0: %.1f %% of GPTQ codes differ from round-to-nearest%n", 100 * share);
            assertTrue(share > 0.02, "GPTQ moved codes: " + share);
        }
        assertRangesAsEvalMeasuresThem(checkpoint, CalibrationStats.load(store.resolve(saved.statsFile())));

        try (LocalCluster cluster = ClusterFixture.start(checkpoint, "fp16", temp.resolve("logs-2"), settings)) {
            Coordinator.Status status = cluster.status();
            assertFalse(Arrays.asList(status.phases()).contains(io.bitrelay.actors.coordinator.Coordinator.Phase.QUANTIZING), "no calibration on restart: " + Arrays.toString(status.phases()));
            assertEquals("w4a16-gptq restored from the store", status.quantization());
            List<int[]> restored = ClusterFixture.generate(cluster, prompts, greedy, MAX_TOKENS);
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(calibrated.get(i), restored.get(i), "prompt " + i + " after restart");
            }
        }
    }

    /**
     * The first stage's ranges (its input, the embeddings, is computed as in one process) are what {@code Calibration}
     * measures with batch-mean ranges over the same sequences, one at a time, and not the extremes. The sequences are
     * the coordinator's random ids (RecipeCalibration: seed 2304, ids in [4, vocab)), 4 × 64 tokens.
     */
    private static void assertRangesAsEvalMeasuresThem(Path checkpoint, CalibrationStats cluster) {
        assertEquals(RangeEstimator.BATCH_MEAN, cluster.source().ranges());
        SplittableRandom random = new SplittableRandom(2304);
        int[] tokens = new int[4 * 64];
        for (int i = 0; i < 4; i++) {
            System.arraycopy(random.ints(64, 4, ClusterFixture.MODEL.vocabSize()).toArray(), 0, tokens, i * 64, 64);
        }
        ChannelStats measured = cluster.get(0, ActivationSite.QKV_INPUT);
        ChannelStats batchMean;
        ChannelStats extremes;
        try (OptModel model = OptModel.load(checkpoint)) {
            batchMean = Calibration.run(model, tokens, 4, 64, "random", Progress.NONE, null, RangeEstimator.BATCH_MEAN)
                    .get(0, ActivationSite.QKV_INPUT);
            extremes = Calibration.run(model, tokens, 4, 64, "random", Progress.NONE, null, RangeEstimator.MIN_MAX)
                    .get(0, ActivationSite.QKV_INPUT);
        }
        assertEquals(batchMean.rows(), measured.rows());
        int widerExtremes = 0;
        for (int j = 0; j < measured.width(); j++) {
            float tolerance = 1e-5f * Math.max(1f, batchMean.absMax()[j]);
            assertEquals(batchMean.min()[j], measured.min()[j], tolerance, "min of channel " + j);
            assertEquals(batchMean.max()[j], measured.max()[j], tolerance, "max of channel " + j);
            widerExtremes += extremes.max()[j] - extremes.min()[j] > batchMean.max()[j] - batchMean.min()[j] + 1e-3f ? 1 : 0;
        }
        assertTrue(widerExtremes > measured.width() / 2, "the extremes are wider in " + widerExtremes + " channels only");
    }
}
