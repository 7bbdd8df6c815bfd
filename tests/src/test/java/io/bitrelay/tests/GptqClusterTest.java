package io.bitrelay.tests;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.quant.PackedWeights;
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

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A GPTQ recipe through three worker JVMs: each worker keeps its stage's calibration inputs while the
 * coordinator streams calibration (nothing of it crosses the cluster) and, when the plan arrives, rounds its
 * layers with GPTQ one at a time over them. The saved stages hold GPTQ codes (per-channel scales as round-to-nearest's, codes
 * not), and a restart serves the same tokens from the store without calibrating.
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
        SavedRecipe.Stage first = saved.stages().getFirst();
        int layers = saved.stages().getLast().endLayer();
        try (OptModel base = OptModel.load(checkpoint, new LayerRange(first.firstLayer(), first.endLayer(), layers));
             OptModel stage = StageFile.load(store.resolve(first.file()), base, new StageFile.Identity(saved.fingerprint(),
                     saved.recipe(), saved.alpha(), first.firstLayer(), first.endLayer()), first.crc32c());
             Arena arena = Arena.ofShared()) {
            Linear fp32 = assertInstanceOf(Linear.class, base.weights().layers()[0].fc1());
            PackedWeights gptq = assertInstanceOf(WeightOnlyLinear.class, stage.weights().layers()[0].fc1()).weights();
            PackedWeights nearest = PackedWeights.quantize(fp32, 4, 0, arena);
            long changed = 0;
            byte[] a = new byte[fp32.inFeatures()];
            byte[] b = new byte[fp32.inFeatures()];
            for (int j = 0; j < fp32.outFeatures(); j++) {
                assertEquals(nearest.scale(j, 0), gptq.scale(j, 0), "row " + j + ": per-channel scale from the row's absmax");
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
}
