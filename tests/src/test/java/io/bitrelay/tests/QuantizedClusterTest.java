package io.bitrelay.tests;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.generate.Sampler;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RecipeApplier;
import io.bitrelay.runtime.quant.store.SavedRecipe;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Three worker JVMs calibrate a W8A8 SmoothQuant recipe through the pipeline, serve it, and save it to the
 * quantization store; a restart serves the saved stages without calibrating; a damaged stage file makes the
 * next start calibrate again. The greedy tokens must be those of the same stages run in one process: each
 * built by {@code RecipeApplier} from the statistics the cluster measured (the same plan, so the same INT8
 * weights and the same math), with the hidden states rounded to FP16 between stages as the links round them.
 */
class QuantizedClusterTest {
    private static final int MAX_TOKENS = 8;
    private static final List<String> PROMPTS = List.of(
            "The capital of France is",
            "In 1867 the harbour was rebuilt, and trade with the northern ports grew quickly.",
            "quantized links");

    @TempDir
    Path temp;

    @Test
    @Timeout(600) // three cluster starts: about 1.5 min on an idle 2-core machine, 4-5 min when it is shared
    void shouldCalibrateServeAndReuseAW8A8SmoothQuantStore() throws Exception {
        Path checkpoint = ClusterFixture.writeModel(temp.resolve("model"));
        Path store = temp.resolve("store");
        Map<String, Object> settings = Map.of(
                "bitrelay.quantization.recipe", "w8a8-smoothquant",
                "bitrelay.quantization.alpha", 0.5,
                "bitrelay.quantization.calibration.sequences", 4,
                "bitrelay.quantization.calibration.tokens", 64,
                "bitrelay.quantization.store", store.toString());
        List<int[]> prompts = new ArrayList<>();
        try (OptTokenizer tokenizer = OptTokenizer.load(checkpoint)) {
            PROMPTS.forEach(p -> prompts.add(tokenizer.encode(p)));
        }
        List<SamplingParams> greedy = Collections.nCopies(prompts.size(), SamplingParams.greedy());

        List<int[]> calibrated;
        try (LocalCluster cluster = ClusterFixture.start(checkpoint, "fp16", temp.resolve("logs-1"), settings)) {
            Coordinator.Status status = cluster.status();
            assertTrue(Arrays.asList(status.phases()).contains(io.bitrelay.actors.coordinator.Coordinator.Phase.QUANTIZING), Arrays.toString(status.phases()));
            assertEquals("w8a8-smoothquant calibrated", status.quantization());
            calibrated = ClusterFixture.generate(cluster, prompts, greedy, MAX_TOKENS);
        }
        SavedRecipe saved = SavedRecipe.read(store);
        assertEquals(3, saved.stages().size());
        assertEquals(new SavedRecipe.Calibration("", "", 4, 64, 2304), saved.calibration());
        long storeBytes = 0;
        for (SavedRecipe.Stage stage : saved.stages()) {
            storeBytes += Files.size(store.resolve(stage.file()));
        }
        System.out.printf("quantization store: %d stage files, %d bytes%n", saved.stages().size(), storeBytes);

        List<int[]> reference = stagedReference(checkpoint, CalibrationStats.load(store.resolve(saved.statsFile())),
                saved.stages(), prompts);
        for (int i = 0; i < prompts.size(); i++) {
            System.out.printf("prompt %d: in-process stages %s%n          cluster           %s%n", i, Arrays.toString(reference.get(i)),
                    Arrays.toString(calibrated.get(i)));
            assertArrayEquals(reference.get(i), Arrays.copyOf(calibrated.get(i), reference.get(i).length), "prompt " + i);
        }

        try (LocalCluster cluster = ClusterFixture.start(checkpoint, "fp16", temp.resolve("logs-2"), settings)) {
            Coordinator.Status status = cluster.status();
            assertFalse(Arrays.asList(status.phases()).contains(io.bitrelay.actors.coordinator.Coordinator.Phase.QUANTIZING), "no calibration on restart: " + Arrays.toString(status.phases()));
            assertEquals("w8a8-smoothquant restored from the store", status.quantization());
            List<int[]> restored = ClusterFixture.generate(cluster, prompts, greedy, MAX_TOKENS);
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(calibrated.get(i), restored.get(i), "prompt " + i + " after restart");
            }
        }

        // A damaged stage file of the right size passes the coordinator's checks; the worker's CRC32C refuses it,
        // and the pipeline calibrates again (the same statistics: the same tokens) and rewrites the store.
        Path damaged = store.resolve(saved.stages().get(1).file());
        byte[] bytes = Files.readAllBytes(damaged);
        bytes[bytes.length - 7] ^= 0x10;
        Files.write(damaged, bytes);
        try (LocalCluster cluster = ClusterFixture.start(checkpoint, "fp16", temp.resolve("logs-3"), settings)) {
            Coordinator.Status status = cluster.status();
            assertTrue(Arrays.asList(status.phases()).contains(io.bitrelay.actors.coordinator.Coordinator.Phase.QUANTIZING), Arrays.toString(status.phases()));
            assertEquals("w8a8-smoothquant calibrated", status.quantization());
            List<int[]> recalibrated = ClusterFixture.generate(cluster, prompts, greedy, MAX_TOKENS);
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(calibrated.get(i), recalibrated.get(i), "prompt " + i + " after recalibrating");
            }
        }
        // Same files and sizes. The bytes are not asserted: statistics gathered from micro-batches whose composition
        // depends on timing may merge in another order.
        List<SavedRecipe.Stage> rewritten = SavedRecipe.read(store).stages();
        for (int i = 0; i < saved.stages().size(); i++) {
            assertEquals(saved.stages().get(i).file(), rewritten.get(i).file());
            assertEquals(saved.stages().get(i).bytes(), rewritten.get(i).bytes());
        }
    }

    /**
     * The cluster's computation in one process: each saved stage's layers quantized from the same statistics, run
     * in turn over the hidden states, which are rounded to FP16 between stages as the FP16 links round them; the
     * last stage's logits pick each token greedily. Without that rounding a near-tie token could differ from the
     * cluster's for reasons that are not bugs.
     */
    private static List<int[]> stagedReference(Path checkpoint, CalibrationStats stats, List<SavedRecipe.Stage> saved,
                                               List<int[]> prompts) {
        int layers = saved.getLast().endLayer();
        List<OptModel> bases = new ArrayList<>();
        List<OptModel> stages = new ArrayList<>();
        try {
            for (SavedRecipe.Stage stage : saved) {
                OptModel base = OptModel.load(checkpoint, new LayerRange(stage.firstLayer(), stage.endLayer(), layers));
                bases.add(base);
                stages.add(RecipeApplier.apply(base, QuantRecipe.W8A8_SMOOTHQUANT, stats, 0.5f));
            }
            List<int[]> tokens = new ArrayList<>();
            for (int[] prompt : prompts) {
                tokens.add(generateStaged(stages, prompt));
            }
            return tokens;
        } finally {
            stages.forEach(OptModel::close);
            bases.forEach(OptModel::close);
        }
    }

    private static int[] generateStaged(List<OptModel> stages, int[] prompt) {
        List<KvCache> caches = new ArrayList<>();
        try {
            stages.forEach(stage -> caches.add(stage.newCache()));
            int[] produced = new int[MAX_TOKENS];
            int[] input = prompt;
            int width = stages.getFirst().config().hiddenSize();
            for (int step = 0; step < MAX_TOKENS; step++) {
                try (Arena arena = Arena.ofShared()) {
                    MemorySegment hidden = stages.getFirst().embed(List.of(new SequenceChunk(input, caches.getFirst())), arena);
                    for (int s = 0; s < stages.size(); s++) {
                        if (s > 0) {
                            roundToFp16(hidden, (long) input.length * width);
                        }
                        stages.get(s).runLayers(List.of(new SequenceChunk(input, caches.get(s))), hidden, arena);
                    }
                    float[] logits = stages.getLast().logits(hidden, new int[]{input.length - 1}, arena)[0];
                    produced[step] = Sampler.argmax(logits);
                }
                if (produced[step] == stages.getLast().config().eosTokenId()) {
                    return Arrays.copyOf(produced, step + 1);
                }
                input = new int[]{produced[step]};
            }
            return produced;
        } finally {
            caches.forEach(KvCache::close);
        }
    }

    private static void roundToFp16(MemorySegment hidden, long count) {
        for (long i = 0; i < count; i++) {
            hidden.setAtIndex(ValueLayout.JAVA_FLOAT, i,
                    Float.float16ToFloat(Float.floatToFloat16(hidden.getAtIndex(ValueLayout.JAVA_FLOAT, i))));
        }
    }
}
