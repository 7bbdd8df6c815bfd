package io.bitrelay.runtime.model.opt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Scratch activations of one forward step, sized for its rows; they live as long as the step's arena. */
final class StepBuffers {
    final MemorySegment normed;    // (rows, hidden)
    final MemorySegment q;         // (rows, hidden)
    final MemorySegment k;         // (rows, hidden)
    final MemorySegment v;         // (rows, hidden)
    final MemorySegment attention; // (rows, hidden)
    final MemorySegment projected; // (rows, hidden)
    final MemorySegment ffn;       // (rows, ffnDim)

    StepBuffers(Arena arena, int rows, OptConfig config) {
        long hiddenBytes = (long) rows * config.hiddenSize() * Float.BYTES;
        normed = arena.allocate(hiddenBytes, 64);
        q = arena.allocate(hiddenBytes, 64);
        k = arena.allocate(hiddenBytes, 64);
        v = arena.allocate(hiddenBytes, 64);
        attention = arena.allocate(hiddenBytes, 64);
        projected = arena.allocate(hiddenBytes, 64);
        ffn = arena.allocate((long) rows * config.ffnDim() * Float.BYTES, 64);
    }
}
