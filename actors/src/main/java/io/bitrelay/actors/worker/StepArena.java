package io.bitrelay.actors.worker;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The scratch memory of one step at a time, reused from step to step: {@link #close()} ends a step and makes its
 * memory the next step's, instead of freeing it. A fresh shared arena per step cost ~0.1 ms at every close (a
 * handshake with every thread of the JVM), which a step of a few milliseconds should not pay. Slices come from one
 * block, zeroed as {@link Arena#allocate} promises; a step that needs more gets a block twice as large, and the
 * outgrown one is freed when that step ends, so after the first large steps none allocates. One step at a time,
 * on the stage's compute thread; memory of a step must not be used after it.
 */
public final class StepArena implements Arena {
    private static final long MIN_BLOCK = 1 << 20;

    private Arena blockArena = Arena.ofShared();
    private MemorySegment block = blockArena.allocate(MIN_BLOCK, 64);
    private long used;
    private final List<Arena> outgrown = new ArrayList<>();

    @Override
    public MemorySegment allocate(long byteSize, long byteAlignment) {
        if (byteSize < 0 || byteAlignment <= 0 || Long.bitCount(byteAlignment) != 1) {
            throw new IllegalArgumentException("bad size " + byteSize + " or alignment " + byteAlignment);
        }
        long start = alignUp(used, byteAlignment);
        if (start + byteSize > block.byteSize()) {
            grow(byteSize + byteAlignment);
            start = 0;
        }
        used = start + byteSize;
        return block.asSlice(start, byteSize).fill((byte) 0);
    }

    /** The block in use stays alive for this step's slices until {@link #close()}; later ones come from a larger one. */
    private void grow(long atLeast) {
        outgrown.add(blockArena);
        long size = Math.max(2 * block.byteSize(), Math.max(MIN_BLOCK, atLeast));
        blockArena = Arena.ofShared();
        block = blockArena.allocate(size, 64);
        used = 0;
    }

    private static long alignUp(long offset, long alignment) {
        return (offset + alignment - 1) & -alignment;
    }

    @Override
    public MemorySegment.Scope scope() {
        return blockArena.scope();
    }

    /** Ends the step: its memory goes back for the next one. */
    @Override
    public void close() {
        used = 0;
        outgrown.forEach(Arena::close);
        outgrown.clear();
    }

    /** Frees the memory for good (the stage shuts down). */
    public void release() {
        close();
        blockArena.close();
    }
}
