package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.checkpoint.CheckpointException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
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
}
