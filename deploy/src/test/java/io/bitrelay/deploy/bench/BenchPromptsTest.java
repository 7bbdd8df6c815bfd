package io.bitrelay.deploy.bench;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class BenchPromptsTest {
    @Test
    void shouldBuildPromptsOfExactlyTheLengthFromDifferentOffsets() {
        List<int[]> prompts = BenchPrompts.of(new int[]{2}, new int[]{10, 11, 12, 13, 14, 15, 16, 17, 18}, 2, 5);
        assertArrayEquals(new int[]{2, 10, 11, 12, 13}, prompts.get(0));
        assertArrayEquals(new int[]{2, 17, 18, 10, 11}, prompts.get(1), "offset 7, read cyclically");
        assertThrows(IllegalArgumentException.class, () -> BenchPrompts.of(new int[]{2}, new int[]{10}, 1, 1));
    }
}
