package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.checkpoint.CheckpointException;
import io.bitrelay.runtime.checkpoint.HfCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptCheckpointLoaderTest {
    @TempDir
    Path temp;

    @Test
    void shouldNameTensorWhoseShapeDisagreesWithConfig() throws IOException {
        Path checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
        String config = Files.readString(checkpoint.resolve("config.json")).replace("\"ffn_dim\" : 128", "\"ffn_dim\" : 256");
        Files.writeString(checkpoint.resolve("config.json"), config);
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptModel.load(checkpoint));
        assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("layers.0.fc1.weight")
                && e.getMessage().contains("[128, 64]"), e.getMessage());
    }

    @Test
    void shouldNameBadConfigKey() throws IOException {
        Path checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
        String config = Files.readString(checkpoint.resolve("config.json")).replace("\"num_attention_heads\" : 4", "\"num_attention_heads\" : \"four\"");
        Files.writeString(checkpoint.resolve("config.json"), config);
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptModel.load(checkpoint));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("num_attention_heads"), e.getMessage());
    }

    @Test
    void shouldLoadOnlyTheStageLayersAndChainToTheFullModel() {
        Path checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
        int[] prompt = {2, 40, 41, 42, 43, 44, 45};
        float[] expected;
        try (OptModel full = OptModel.load(checkpoint); KvCache cache = full.newCache()) {
            expected = full.forward(List.of(new SequenceChunk(prompt, cache)), false)[0];
        }
        try (OptModel first = OptModel.load(checkpoint, new LayerRange(0, 1, 3));
             OptModel second = OptModel.load(checkpoint, new LayerRange(1, 3, 3));
             KvCache firstCache = first.newCache();
             KvCache secondCache = second.newCache();
             Arena step = Arena.ofShared()) {
            var hidden = first.embed(List.of(new SequenceChunk(prompt, firstCache)), step);
            first.runLayers(List.of(new SequenceChunk(prompt, firstCache)), hidden, step);
            second.runLayers(List.of(new SequenceChunk(prompt, secondCache)), hidden, step);
            float[] staged = second.logits(hidden, new int[]{prompt.length - 1}, step)[0];
            assertArrayEquals(expected, staged, 0f, "two stages must compute exactly what one model does");
            assertEquals(prompt.length, firstCache.length());
            assertThrows(IllegalStateException.class, () -> second.embed(List.of(new SequenceChunk(prompt, secondCache)), step));
        }
    }
    /** What a GPU worker streaming its layers uses: the stage's embeddings/head alone, then each layer alone. */
    @Test
    void shouldLoadAStageWithoutItsLayersAndEachLayerAlone() {
        Path checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
        int[] prompt = {2, 40, 41, 42, 43};
        LayerRange last = new LayerRange(1, 3, 3);
        try (OptModel first = OptModel.load(checkpoint, new LayerRange(0, 1, 3));
             OptModel firstHost = OptModel.loadWithoutLayers(checkpoint, new LayerRange(0, 1, 3));
             OptModel full = OptModel.load(checkpoint, last);
             OptModel host = OptModel.loadWithoutLayers(checkpoint, last);
             KvCache cache = first.newCache();
             HfCheckpoint files = HfCheckpoint.open(checkpoint);
             Arena step = Arena.ofShared()) {
            assertEquals(0, host.weights().layers().length);
            assertEquals(last, host.range());
            MemorySegment hidden = first.embed(List.of(new SequenceChunk(prompt, cache)), step);
            MemorySegment hostHidden = firstHost.embed(List.of(new SequenceChunk(prompt, cache)), step);
            assertEquals(-1, hidden.mismatch(hostHidden), "the same embeddings without the layers");
            int[] rows = {0, prompt.length - 1};
            float[][] expected = full.logits(hidden, rows, step);
            float[][] actual = host.logits(hidden, rows, step);
            for (int i = 0; i < rows.length; i++) {
                assertArrayEquals(expected[i], actual[i], 0f, "the same head without the layers");
            }
            for (int layer = last.first(); layer < last.end(); layer++) {
                LayerWeights alone = OptCheckpointLoader.loadLayer(files, full.config(), layer, step);
                LayerWeights inStage = full.weights().layers()[layer - last.first()];
                assertEquals(-1, ((Linear) alone.fc1()).weight().mismatch(((Linear) inStage.fc1()).weight()), "layer " + layer + " fc1");
                assertEquals(-1, ((Linear) alone.qProj()).bias().mismatch(((Linear) inStage.qProj()).bias()), "layer " + layer + " q bias");
                assertEquals(-1, alone.finalLayerNorm().gain().mismatch(inStage.finalLayerNorm().gain()), "layer " + layer + " LayerNorm");
            }
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> OptCheckpointLoader.loadLayer(files, full.config(), 3, step));
            assertTrue(e.getMessage().contains("layer 3") && e.getMessage().contains("3 layers"), e.getMessage());
        }
    }
}
