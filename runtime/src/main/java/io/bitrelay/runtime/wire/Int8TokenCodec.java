package io.bitrelay.runtime.wire;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Symmetric per-token INT8: each row gets scale = absmax / 127, stored as FP16 in the params section
 * (2 bytes per row, little-endian), and each element q = round(x / scale) in [-127, 127] in the payload
 * (1 byte per element, row-major). Decoding gives q × scale; an all-zero row has scale 0.
 *
 * <p>The FP16 scale is rounded <em>up</em> to the next FP16 value at or above absmax / 127, and encode
 * divides by that same rounded scale, so no element is ever clipped and |x - x̂| ≤ scale / 2 holds for
 * the scale the receiver sees (plus FP32 rounding of the division and product). Rows whose absmax
 * exceeds 127 × 65504 (≈ 8.3e6) saturate, since the scale cannot exceed FP16's 65504. Rows holding
 * NaN or ±Inf are refused at encode: INT8 cannot carry them and silent garbage would travel on.
 *
 * <p>Rounding is to nearest, ties to even (as Math.rint), in both the vector body and the scalar tail.
 */
public final class Int8TokenCodec implements LinkCodec {
    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
    /** As many byte lanes as FLOATS has float lanes; null where no such shape exists (then scalar only). */
    private static final VectorSpecies<Byte> BYTES = FLOATS.length() >= 8
            ? VectorSpecies.of(byte.class, VectorShape.forBitSize(FLOATS.length() * Byte.SIZE))
            : null;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static final int Q_MAX = 127;
    private static final float FP16_MAX = 65504f;
    private static final short FP16_MAX_BITS = 0x7bff;
    /** 1.5 × 2^23: adding then subtracting it rounds |y| < 2^22 to an integer, ties to even (no fraction bits left). */
    private static final float RINT_MAGIC = 12_582_912f;

    @Override
    public CodecId id() {
        return CodecId.INT8;
    }

    @Override
    public int paramsBytes(int rows, int width) {
        return Math.multiplyExact(rows, Short.BYTES);
    }

    @Override
    public long payloadBytes(int rows, int width) {
        return (long) rows * width;
    }

    @Override
    public void encode(MemorySegment activations, int rows, int width, MemorySegment params, MemorySegment payload) {
        for (int row = 0; row < rows; row++) {
            long rowStart = (long) row * width; // element index in activations == byte index in payload
            float absMax = absMax(activations, rowStart, width);
            if (!Float.isFinite(absMax)) {
                throw new IllegalArgumentException("row " + row + " of the activations holds " + absMax
                        + "; the int8 link codec cannot carry non-finite values");
            }
            short scaleBits = scaleBits(absMax);
            params.setAtIndex(F16_LE, row, scaleBits);
            float scale = Float.float16ToFloat(scaleBits);
            if (scale == 0f) {
                payload.asSlice(rowStart, width).fill((byte) 0);
            } else {
                quantizeRow(activations, rowStart, width, scale, payload);
            }
        }
    }

    @Override
    public void decode(MemorySegment params, MemorySegment payload, int rows, int width, MemorySegment out) {
        for (int row = 0; row < rows; row++) {
            long rowStart = (long) row * width;
            float scale = Float.float16ToFloat(params.getAtIndex(F16_LE, row));
            int i = 0;
            if (BYTES != null) {
                int bound = FLOATS.loopBound(width);
                for (; i < bound; i += FLOATS.length()) {
                    ByteVector q = ByteVector.fromMemorySegment(BYTES, payload, rowStart + i, NATIVE);
                    ((FloatVector) q.castShape(FLOATS, 0)).mul(scale)
                            .intoMemorySegment(out, (rowStart + i) * Float.BYTES, NATIVE);
                }
            }
            for (; i < width; i++) {
                out.setAtIndex(F32, rowStart + i, payload.get(ValueLayout.JAVA_BYTE, rowStart + i) * scale);
            }
        }
    }

    /**
     * FP16 bits of the smallest FP16 value ≥ absMax / 127 (so no element clips), capped at 65504;
     * 0 only for an all-zero row.
     */
    static short scaleBits(float absMax) {
        if (absMax == 0f) {
            return 0;
        }
        float wanted = absMax / Q_MAX;
        if (wanted >= FP16_MAX) {
            return FP16_MAX_BITS;
        }
        short bits = Float.floatToFloat16(wanted);
        if (Float.float16ToFloat(bits) < wanted || bits == 0) {
            bits++; // positive FP16 bit patterns are ordered like their values
        }
        return bits;
    }

    private static float absMax(MemorySegment x, long start, int n) {
        float max = 0f;
        int i = 0;
        int bound = FLOATS.loopBound(n);
        if (bound > 0) {
            FloatVector acc = FloatVector.zero(FLOATS);
            for (; i < bound; i += FLOATS.length()) {
                acc = acc.max(FloatVector.fromMemorySegment(FLOATS, x, (start + i) * Float.BYTES, NATIVE).abs());
            }
            max = acc.reduceLanes(VectorOperators.MAX); // NaN propagates, as in Math.max
        }
        for (; i < n; i++) {
            max = Math.max(max, Math.abs(x.getAtIndex(F32, start + i)));
        }
        return max;
    }

    private static void quantizeRow(MemorySegment x, long start, int n, float scale, MemorySegment payload) {
        int i = 0;
        if (BYTES != null) {
            int bound = FLOATS.loopBound(n);
            for (; i < bound; i += FLOATS.length()) {
                FloatVector q = FloatVector.fromMemorySegment(FLOATS, x, (start + i) * Float.BYTES, NATIVE)
                        .div(scale).max(-Q_MAX).min(Q_MAX).add(RINT_MAGIC).sub(RINT_MAGIC);
                ((ByteVector) q.castShape(BYTES, 0)).intoMemorySegment(payload, start + i, NATIVE);
            }
        }
        for (; i < n; i++) {
            float y = Math.min(Q_MAX, Math.max(-Q_MAX, x.getAtIndex(F32, start + i) / scale));
            payload.set(ValueLayout.JAVA_BYTE, start + i, (byte) ((y + RINT_MAGIC) - RINT_MAGIC));
        }
    }
}
