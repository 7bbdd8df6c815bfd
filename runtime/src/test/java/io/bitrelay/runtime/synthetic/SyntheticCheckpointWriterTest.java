package io.bitrelay.runtime.synthetic;

import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.checkpoint.HfCheckpoint;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.tensor.Fp32Tensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SyntheticCheckpointWriterTest {
    @TempDir
    Path temp;

    @Test
    void shouldWriteIdenticalBytesForTheSameSeed() throws IOException {
        Path a = TestModels.writeTiny(temp.resolve("a"));
        Path b = TestModels.writeTiny(temp.resolve("b"));
        assertArrayEquals(Files.readAllBytes(a.resolve("model.safetensors")), Files.readAllBytes(b.resolve("model.safetensors")));
        Path other = SyntheticCheckpointWriter.write(temp.resolve("c"), TestModels.tinyConfig(),
                SyntheticOptions.defaults().withStorage(DType.F32).withSeed(99));
        assertTrue(!Arrays.equals(Files.readAllBytes(a.resolve("model.safetensors")), Files.readAllBytes(other.resolve("model.safetensors"))));
    }

    @Test
    void shouldPlantOutliersWithoutChangingTheFunction() {
        SyntheticOptions plain = SyntheticOptions.defaults().withStorage(DType.F32);
        Path base = SyntheticCheckpointWriter.write(temp.resolve("base"), TestModels.tinyConfig(), plain);
        Path outliers = SyntheticCheckpointWriter.write(temp.resolve("outliers"), TestModels.tinyConfig(), plain.withOutliers(true));
        int[] prompt = {2, 17, 99, 250, 8, 64, 33};
        float[][] expected = logits(base, prompt);
        float[][] actual = logits(outliers, prompt);
        for (int i = 0; i < prompt.length; i++) {
            assertArrayEquals(expected[i], actual[i], 2e-3f, "position " + i);
        }
        assertTrue(Files.isRegularFile(outliers.resolve("outlier_plan.json")));
    }

    @Test
    void shouldMakeOutlierChannelsDominateLayerNormGain() {
        Path outliers = SyntheticCheckpointWriter.write(temp.resolve("outliers"), TestModels.tinyConfig(),
                SyntheticOptions.defaults().withStorage(DType.F32).withOutliers(true));
        try (HfCheckpoint checkpoint = HfCheckpoint.open(outliers)) {
            var gain = checkpoint.tensor("model.decoder.layers.1.self_attn_layer_norm.weight");
            float[] values = Fp32Tensors.toArray(gain.data(), 0, 64);
            float[] magnitudes = new float[values.length];
            for (int i = 0; i < values.length; i++) {
                magnitudes[i] = Math.abs(values[i]);
            }
            Arrays.sort(magnitudes);
            float median = magnitudes[magnitudes.length / 2];
            assertTrue(magnitudes[magnitudes.length - 1] / median > 15, "largest gain should be ≥20x the median");
            assertTrue(magnitudes[magnitudes.length - 4] / median > 15, "four scaled channels per LayerNorm");
        }
    }

    @Test
    void shouldWriteShardsWithAnIndexThatLoads() throws IOException {
        OptConfig config = TestModels.tinyConfig();
        Path sharded = SyntheticCheckpointWriter.write(temp.resolve("sharded"), config,
                SyntheticOptions.defaults().withStorage(DType.BF16).withShardBytes(40_000));
        try (var files = Files.list(sharded)) {
            assertTrue(files.filter(p -> p.getFileName().toString().startsWith("model-0")).count() > 2);
        }
        assertTrue(Files.isRegularFile(sharded.resolve(HfCheckpoint.INDEX_FILE)));
        assertEquals(7, logits(sharded, new int[]{2, 3, 4, 5, 6, 7, 8}).length);
    }

    private static float[][] logits(Path checkpoint, int[] prompt) {
        try (OptModel model = OptModel.load(checkpoint); KvCache cache = model.newCache()) {
            return model.forward(List.of(new SequenceChunk(prompt, cache)), true);
        }
    }
}
