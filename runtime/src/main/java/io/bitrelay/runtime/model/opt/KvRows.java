package io.bitrelay.runtime.model.opt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * One layer's keys, or its values, of one sequence: a row of {@code hidden} channels per position, split
 * into heads of {@code headDim} channels, stored in some {@link KvPrecision}. Attention reads a head of a
 * position through {@link #read}, which either points the reader at the stored FP32 channels or
 * dequantizes them into the reader's scratch, so the attention math is one code path for every precision.
 * Writes happen on the step's thread before attention runs; reads run concurrently (each task with its
 * own {@link HeadReader}) and never write.
 */
abstract sealed class KvRows permits Fp32KvRows, QuantizedKvRows {
    final int numHeads;
    final int headDim;
    final int hidden;

    KvRows(int numHeads, int headDim) {
        this.numHeads = numHeads;
        this.headDim = headDim;
        this.hidden = numHeads * headDim;
    }

    static KvRows create(KvPrecision precision, int numHeads, int headDim) {
        return precision == KvPrecision.FP32 ? new Fp32KvRows(numHeads, headDim)
                : new QuantizedKvRows(precision, numHeads, headDim);
    }

    /** Storage for {@code capacity} positions allocated in {@code arena}, positions [0, kept) copied over. */
    abstract void resize(Arena arena, int capacity, int kept);

    /** Forgets the storage (its arena is being closed). */
    abstract void release();

    /** Stores rows [srcRow, srcRow + rows) of {@code src} (·, hidden) FP32 at positions [position, position + rows). */
    abstract void write(MemorySegment src, long srcRow, int rows, int position);

    /** Makes {@code reader} show the {@code headDim} channels of {@code head} at {@code position}. */
    abstract void read(int position, int head, HeadReader reader);

    /** Bytes one position takes, codes and group parameters. */
    abstract long bytesPerPosition();

    /**
     * Where one head's channels of one position can be read as FP32: {@code (segment, offset)} in elements,
     * either inside the cache (FP32) or in {@link #values} (dequantized). One per attention task: reusing it
     * from position to position is what keeps the read path free of allocation.
     */
    static final class HeadReader {
        final float[] values;          // (headDim) dequantized channels
        final MemorySegment scratch;   // heap view of values
        final byte[] codes;            // (headDim) unpacked codes
        MemorySegment segment;
        long offset;

        HeadReader(int headDim) {
            values = new float[headDim];
            scratch = MemorySegment.ofArray(values);
            codes = new byte[headDim];
        }
    }
}
