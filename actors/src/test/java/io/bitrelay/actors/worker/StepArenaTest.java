package io.bitrelay.actors.worker;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StepArenaTest {
    @Test
    void shouldHandOutZeroedAlignedDisjointSlicesAndReuseThemNextStep() {
        StepArena arena = new StepArena();
        try {
            MemorySegment first;
            try (Arena step = arena) {
                first = step.allocate(100, 8);
                MemorySegment second = step.allocate(4096, 64);
                assertEquals(0, second.address() % 64);
                assertTrue(second.address() >= first.address() + 100, "slices overlap");
                first.fill((byte) 7);
                second.fill((byte) 9);
            }
            try (Arena step = arena) {
                MemorySegment again = step.allocate(100, 8);
                assertEquals(first.address(), again.address(), "the next step reuses the memory");
                for (long i = 0; i < again.byteSize(); i++) {
                    assertEquals(0, again.get(ValueLayout.JAVA_BYTE, i), "byte " + i + " not zeroed");
                }
            }
        } finally {
            arena.release();
        }
    }

    @Test
    void shouldGrowForLargeStepsWithoutInvalidatingEarlierSlicesOfTheStep() {
        StepArena arena = new StepArena();
        try {
            try (Arena step = arena) {
                MemorySegment small = step.allocate(512, 8);
                small.set(ValueLayout.JAVA_INT, 0, 42);
                MemorySegment large = step.allocate(5L << 20, 64);
                large.set(ValueLayout.JAVA_INT, large.byteSize() - 4, 1);
                assertEquals(42, small.get(ValueLayout.JAVA_INT, 0), "a slice of the outgrown block must live to the step's end");
            }
            try (Arena step = arena) {
                MemorySegment large = step.allocate(5L << 20, 64);
                assertEquals(0, large.get(ValueLayout.JAVA_INT, large.byteSize() - 4));
            }
        } finally {
            arena.release();
        }
        assertFalse(arena.scope().isAlive());
    }

    @Test
    void shouldRefuseBadAlignment() {
        StepArena arena = new StepArena();
        try {
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(8, 3));
        } finally {
            arena.release();
        }
    }

    @Test
    void shouldRecycleFrameBuffersAndGrowForLargerFrames() {
        try (FrameCopies copies = new FrameCopies(); Arena source = Arena.ofConfined()) {
            MemorySegment frame = source.allocate(1000);
            frame.set(ValueLayout.JAVA_BYTE, 999, (byte) 5);
            MemorySegment copy = copies.copy(frame);
            assertEquals(1000, copy.byteSize());
            assertEquals(5, copy.get(ValueLayout.JAVA_BYTE, 999));
            copies.recycle(copy);
            MemorySegment reused = copies.copy(source.allocate(2000));
            assertEquals(copy.address(), reused.address(), "a recycled buffer large enough is reused");
            copies.recycle(reused);
            MemorySegment larger = copies.copy(source.allocate(10_000));
            assertEquals(10_000, larger.byteSize());
            assertThrows(IllegalArgumentException.class, () -> copies.recycle(frame));
        }
    }
}
