package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.TestModels;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptModelTest {
    @TempDir
    static Path temp;
    static Path checkpoint;

    @BeforeAll
    static void writeModel() {
        checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
    }

    private static int[] randomTokens(int count, long seed) {
        return new SplittableRandom(seed).ints(count, 3, 300).toArray();
    }

    @Test
    void shouldGiveSameLogitsIncrementallyAsInOnePassAcrossCacheGrowth() {
        int[] tokens = randomTokens(90, 1); // crosses the cache's first capacity of 64
        try (OptModel model = OptModel.load(checkpoint)) {
            float[][] whole;
            try (KvCache cache = model.newCache()) {
                whole = model.forward(List.of(new SequenceChunk(tokens, cache)), true);
            }
            try (KvCache cache = model.newCache()) {
                model.forward(List.of(new SequenceChunk(Arrays.copyOf(tokens, 50), cache)), false);
                for (int i = 50; i < tokens.length; i++) {
                    float[] step = model.forward(List.of(new SequenceChunk(new int[]{tokens[i]}, cache)), false)[0];
                    assertArrayEquals(whole[i], step, 1e-4f, "position " + i);
                }
                assertEquals(tokens.length, cache.length());
            }
        }
    }

    @Test
    void shouldComputeEachSequenceOfABatchAsIfAlone() {
        int[] a = randomTokens(12, 2);
        int[] b = randomTokens(5, 3);
        try (OptModel model = OptModel.load(checkpoint)) {
            float[] aliceAlone;
            float[] bobAlone;
            try (KvCache cache = model.newCache()) {
                aliceAlone = model.forward(List.of(new SequenceChunk(a, cache)), false)[0];
            }
            try (KvCache cache = model.newCache()) {
                bobAlone = model.forward(List.of(new SequenceChunk(b, cache)), false)[0];
            }
            try (KvCache alice = model.newCache(); KvCache bob = model.newCache()) {
                float[][] together = model.forward(List.of(new SequenceChunk(a, alice), new SequenceChunk(b, bob)), false);
                assertArrayEquals(aliceAlone, together[0], 1e-5f);
                assertArrayEquals(bobAlone, together[1], 1e-5f);
            }
        }
    }

    @Test
    void shouldRejectTokensOutsideVocabularyAndContextOverflow() {
        try (OptModel model = OptModel.load(checkpoint); KvCache cache = model.newCache()) {
            IllegalArgumentException vocab = assertThrows(IllegalArgumentException.class,
                    () -> model.forward(List.of(new SequenceChunk(new int[]{5, 300}, cache)), false));
            assertTrue(vocab.getMessage().contains("300"));
            IllegalArgumentException context = assertThrows(IllegalArgumentException.class,
                    () -> model.forward(List.of(new SequenceChunk(randomTokens(161, 4), cache)), false));
            assertTrue(context.getMessage().contains("context"), context.getMessage());
            assertEquals(0, cache.length(), "a rejected step must not leave half a sequence in the cache");
        }
    }
}
