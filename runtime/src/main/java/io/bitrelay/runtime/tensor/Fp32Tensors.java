package io.bitrelay.runtime.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Conversions from stored element types to the FP32 the CPU backend computes in. */
public final class Fp32Tensors {
    /** Little-endian views: safetensors data is little-endian whatever the host is. */
    public static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Fp32Tensors() {
    }

    /**
     * FP32 view of stored data. F32 on a little-endian host is used in place (the mapping itself, no copy);
     * F16 and BF16 are widened once into {@code arena}.
     */
    public static MemorySegment toF32(MemorySegment stored, DType dtype, long elements, Arena arena) {
        if (dtype == DType.F32 && ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
            return stored;
        }
        MemorySegment out = arena.allocate(elements * Float.BYTES, 64);
        switch (dtype) {
            case F32 -> {
                for (long i = 0; i < elements; i++) {
                    out.setAtIndex(ValueLayout.JAVA_FLOAT, i, stored.getAtIndex(F32_LE, i));
                }
            }
            case F16 -> {
                for (long i = 0; i < elements; i++) {
                    out.setAtIndex(ValueLayout.JAVA_FLOAT, i, Float.float16ToFloat(stored.getAtIndex(I16_LE, i)));
                }
            }
            case BF16 -> {
                for (long i = 0; i < elements; i++) {
                    out.setAtIndex(ValueLayout.JAVA_FLOAT, i, bf16ToFloat(stored.getAtIndex(I16_LE, i)));
                }
            }
            default -> throw new IllegalArgumentException("cannot widen " + dtype + " to FP32");
        }
        return out;
    }

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** Round-to-nearest-even, as torch's float→bfloat16 cast does (NaN kept quiet). */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    public static float get(MemorySegment f32, long index) {
        return f32.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, index);
    }

    public static float[] toArray(MemorySegment f32, long offsetElements, int count) {
        float[] out = new float[count];
        MemorySegment.copy(f32, ValueLayout.JAVA_FLOAT_UNALIGNED, offsetElements * Float.BYTES, out, 0, count);
        return out;
    }
}
