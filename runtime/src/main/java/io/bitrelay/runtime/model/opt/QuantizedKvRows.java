package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.quant.BitPacking;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Keys or values quantized to 8, 4 or 3 bits per channel, one group per (token, head): the group's
 * {@code headDim} channels share an FP32 scale and minimum (asymmetric, round-to-nearest):
 * <pre>
 *   scale = (max − min) / (2^bits − 1)      code = clamp(round((x − min) / scale), 0, 2^bits − 1)
 *   x̂ = code · scale + min                  |x − x̂| ≤ scale / 2   (up to FP32 rounding)
 * </pre>
 * Layout per layer: codes (capacity, heads, groupCodeBytes) — one byte per code at 8 bits, the
 * {@link BitPacking} stream at 4 and 3 bits (3 bits: 8 codes in 3 bytes, codes straddle bytes), each group
 * starting on a byte boundary — and parameters (capacity, heads, {scale, min}) FP32.
 *
 * <p><b>Why per token for keys too.</b> KIVI (Liu et al., arXiv 2402.02750) quantizes keys per channel,
 * because a few key channels are consistently large and set a per-token group's scale, crushing the other
 * channels. Per-channel groups, however, span tokens: KIVI keeps the newest R tokens in full precision and
 * quantizes a block of G tokens only once it is complete. That makes what a token's key reads back depend on
 * when its block closed, needs a second (residual) store and a re-quantization step on the decode path, and
 * breaks "a prefill reads exactly what a decode would". Here every token is quantized once, at append, into
 * its own groups, so prefill, decode and cache growth are trivially consistent, and the head-sized groups
 * (64 channels in OPT, 128 in opt-175b) already confine an outlier channel to its head. The measured cost is in
 * docs/quantization.md: at 8 and 4 bits it is small on our models; 3-bit keys are where per-channel keys
 * (or smoothing the key channels into q_proj, as SmoothQuant does for activations) would pay off.
 *
 * <p>Reads dequantize one head of one position into the reader's scratch; attention reads each key and
 * value once per block of up to 16 query rows, so the dequantization is amortised over the block at prefill.
 */
final class QuantizedKvRows extends KvRows {
    /** FP32 scale and FP32 minimum per (token, head) group. */
    static final int PARAMETER_BYTES_PER_GROUP = 2 * Float.BYTES;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;

    private final KvPrecision precision;
    private final int bits;
    private final int maxCode;
    private final int groupCodeBytes;
    private MemorySegment codes;  // (capacity, numHeads, groupCodeBytes)
    private MemorySegment params; // (capacity, numHeads, 2) FP32: scale, min

    QuantizedKvRows(KvPrecision precision, int numHeads, int headDim) {
        super(numHeads, headDim);
        if (!precision.quantized()) {
            throw new IllegalArgumentException("QuantizedKvRows needs an integer precision, got " + precision);
        }
        this.precision = precision;
        this.bits = precision.bits();
        this.maxCode = precision.maxCode();
        this.groupCodeBytes = precision.groupCodeBytes(headDim);
    }

    @Override
    void resize(Arena arena, int capacity, int kept) {
        long codeRowBytes = (long) numHeads * groupCodeBytes;
        long paramRowBytes = (long) numHeads * PARAMETER_BYTES_PER_GROUP;
        MemorySegment grownCodes = arena.allocate(capacity * codeRowBytes, 64);
        MemorySegment grownParams = arena.allocate(capacity * paramRowBytes, 64);
        if (kept > 0) {
            MemorySegment.copy(codes, 0, grownCodes, 0, kept * codeRowBytes);
            MemorySegment.copy(params, 0, grownParams, 0, kept * paramRowBytes);
        }
        codes = grownCodes;
        params = grownParams;
    }

    @Override
    void release() {
        codes = null;
        params = null;
    }

    @Override
    void write(MemorySegment src, long srcRow, int rows, int position) {
        byte[] groupCodes = new byte[headDim]; // per call (chunk × layer), not per token
        for (int r = 0; r < rows; r++) {
            for (int head = 0; head < numHeads; head++) {
                long in = (srcRow + r) * hidden + (long) head * headDim;
                long group = (long) (position + r) * numHeads + head;
                quantizeGroup(src, in, groupCodes, group);
                long out = group * groupCodeBytes;
                if (bits == 8) {
                    MemorySegment.copy(groupCodes, 0, codes, ValueLayout.JAVA_BYTE, out, headDim);
                } else {
                    BitPacking.pack(bits, groupCodes, 0, headDim, codes, out);
                }
            }
        }
    }

    private void quantizeGroup(MemorySegment src, long in, byte[] groupCodes, long group) {
        float min = Float.POSITIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (int c = 0; c < headDim; c++) {
            float x = src.getAtIndex(F32, in + c);
            min = Math.min(min, x);
            max = Math.max(max, x);
        }
        float scale = (max - min) / maxCode;
        for (int c = 0; c < headDim; c++) {
            int code = scale > 0 ? Math.round((src.getAtIndex(F32, in + c) - min) / scale) : 0;
            groupCodes[c] = (byte) Math.clamp(code, 0, maxCode);
        }
        params.setAtIndex(F32, 2 * group, scale);
        params.setAtIndex(F32, 2 * group + 1, min);
    }

    @Override
    void read(int position, int head, HeadReader reader) {
        long group = (long) position * numHeads + head;
        float scale = params.getAtIndex(F32, 2 * group);
        float min = params.getAtIndex(F32, 2 * group + 1);
        long in = group * groupCodeBytes;
        byte[] groupCodes = reader.codes;
        if (bits == 8) {
            MemorySegment.copy(codes, ValueLayout.JAVA_BYTE, in, groupCodes, 0, headDim);
        } else {
            BitPacking.unpack(bits, codes, in, groupCodes, 0, headDim);
        }
        float[] values = reader.values;
        for (int c = 0; c < headDim; c++) {
            values[c] = (groupCodes[c] & 0xff) * scale + min;
        }
        reader.segment = reader.scratch;
        reader.offset = 0;
    }

    @Override
    long bytesPerPosition() {
        return (long) numHeads * (groupCodeBytes + PARAMETER_BYTES_PER_GROUP);
    }

    KvPrecision precision() {
        return precision;
    }
}
