package io.bitrelay.runtime.model.opt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Keys or values as computed, FP32 (capacity, hidden): reads point straight into the cache, no copy. */
final class Fp32KvRows extends KvRows {
    private MemorySegment data; // (capacity, hidden)

    Fp32KvRows(int numHeads, int headDim) {
        super(numHeads, headDim);
    }

    MemorySegment data() {
        return data;
    }

    @Override
    void resize(Arena arena, int capacity, int kept) {
        long rowBytes = (long) hidden * Float.BYTES;
        MemorySegment grown = arena.allocate(capacity * rowBytes, 64);
        if (kept > 0) {
            MemorySegment.copy(data, 0, grown, 0, kept * rowBytes);
        }
        data = grown;
    }

    @Override
    void release() {
        data = null;
    }

    @Override
    void write(MemorySegment src, long srcRow, int rows, int position) {
        long rowBytes = (long) hidden * Float.BYTES;
        MemorySegment.copy(src, srcRow * rowBytes, data, position * rowBytes, rows * rowBytes);
    }

    @Override
    void read(int position, int head, HeadReader reader) {
        reader.segment = data;
        reader.offset = (long) position * hidden + (long) head * headDim;
    }

    @Override
    long bytesPerPosition() {
        return (long) hidden * Float.BYTES;
    }
}
