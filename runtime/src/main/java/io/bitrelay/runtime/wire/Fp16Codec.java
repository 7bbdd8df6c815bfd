package io.bitrelay.runtime.wire;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * IEEE binary16 per element, no params: the baseline every bandwidth ratio is measured against.
 * Round to nearest even (Float.floatToFloat16), so values representable in FP16 survive exactly;
 * magnitudes above 65504 become infinities and NaN stays NaN.
 *
 * <p>Scalar on purpose: the Vector API has no FP32↔FP16 lane conversion, while
 * Float.floatToFloat16/float16ToFloat are intrinsics (F16C) on x86.
 */
public final class Fp16Codec implements LinkCodec {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Override
    public CodecId id() {
        return CodecId.FP16;
    }

    @Override
    public int paramsBytes(int rows, int width) {
        return 0;
    }

    @Override
    public long payloadBytes(int rows, int width) {
        return (long) rows * width * Short.BYTES;
    }

    @Override
    public void encode(MemorySegment activations, int rows, int width, MemorySegment params, MemorySegment payload) {
        long n = (long) rows * width;
        for (long i = 0; i < n; i++) {
            payload.setAtIndex(F16_LE, i, Float.floatToFloat16(activations.getAtIndex(F32, i)));
        }
    }

    @Override
    public void decode(MemorySegment params, MemorySegment payload, int rows, int width, MemorySegment out) {
        long n = (long) rows * width;
        for (long i = 0; i < n; i++) {
            out.setAtIndex(F32, i, Float.float16ToFloat(payload.getAtIndex(F16_LE, i)));
        }
    }
}
