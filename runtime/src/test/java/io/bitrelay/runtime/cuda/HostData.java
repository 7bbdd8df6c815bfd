package io.bitrelay.runtime.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/** Random host data for the GPU tests (never zeros), and FP16 conversions. */
public final class HostData {
    public static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    public static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT;
    public static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT;

    private HostData() {
    }

    /** Gaussian FP32 values times {@code scale}, with a few large outlier columns like LLM activations. */
    public static MemorySegment floats(Arena arena, int rows, int cols, float scale, SplittableRandom random) {
        MemorySegment x = arena.allocate((long) rows * cols * Float.BYTES, 64);
        for (long i = 0; i < (long) rows * cols; i++) {
            float v = (float) (gaussian(random) * scale);
            if (i % cols == 7 % cols) {
                v *= 40f; // an outlier channel
            }
            x.setAtIndex(F32, i, v);
        }
        return x;
    }

    public static MemorySegment int8(Arena arena, long count, SplittableRandom random) {
        MemorySegment q = arena.allocate(count, 64);
        for (long i = 0; i < count; i++) {
            q.set(ValueLayout.JAVA_BYTE, i, (byte) (random.nextInt(255) - 127));
        }
        return q;
    }

    /** FP32 rounded to FP16 (round to nearest even, as __float2half_rn). */
    public static MemorySegment toHalf(Arena arena, MemorySegment floats) {
        long count = floats.byteSize() / Float.BYTES;
        MemorySegment halves = arena.allocate(count * 2, 64);
        for (long i = 0; i < count; i++) {
            halves.setAtIndex(F16, i, Float.floatToFloat16(floats.getAtIndex(F32, i)));
        }
        return halves;
    }

    public static MemorySegment fromHalf(Arena arena, MemorySegment halves) {
        long count = halves.byteSize() / 2;
        MemorySegment floats = arena.allocate(count * Float.BYTES, 64);
        for (long i = 0; i < count; i++) {
            floats.setAtIndex(F32, i, Float.float16ToFloat(halves.getAtIndex(F16, i)));
        }
        return floats;
    }

    public static float[] toArray(MemorySegment floats) {
        return floats.toArray(F32);
    }

    /** A device buffer holding a copy of {@code host}. */
    public static DeviceBuffer upload(MemorySegment host) {
        DeviceBuffer buffer = DeviceBuffer.allocate(host.byteSize());
        buffer.copyFromHost(host);
        return buffer;
    }

    public static MemorySegment download(Arena arena, DeviceBuffer buffer, long bytes) {
        MemorySegment host = arena.allocate(bytes, 64);
        buffer.copyToHost(host);
        return host;
    }

    private static double gaussian(SplittableRandom random) {
        return Math.sqrt(-2 * Math.log(1 - random.nextDouble())) * Math.cos(2 * Math.PI * random.nextDouble());
    }
}
