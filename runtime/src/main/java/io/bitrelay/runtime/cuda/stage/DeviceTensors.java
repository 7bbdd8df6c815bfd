package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.DeviceBuffer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/** The device buffers of one layer's weights, owned together and freed together; uploads from host FP32/INT8. */
final class DeviceTensors implements AutoCloseable {
    private final List<DeviceBuffer> buffers = new ArrayList<>();

    DeviceBuffer allocate(long bytes) {
        DeviceBuffer buffer = DeviceBuffer.allocate(bytes);
        buffers.add(buffer);
        return buffer;
    }

    /** An FP32 vector on the device. */
    DeviceBuffer floats(float[] values) {
        DeviceBuffer buffer = allocate((long) values.length * Float.BYTES);
        try (Arena arena = Arena.ofConfined()) {
            buffer.copyFromHost(arena.allocateFrom(ValueLayout.JAVA_FLOAT, values));
        }
        return buffer;
    }

    /** A copy of {@code count} FP32 values of a host segment. */
    DeviceBuffer floats(MemorySegment fp32, int count) {
        return floats(fp32.asSlice(0, (long) count * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT));
    }

    private static final int UPLOAD_BLOCK = 1 << 16;

    /** Writes {@code count} FP32 values of {@code fp32}, times {@code factor}, rounded to FP16, at element {@code at} of {@code target}. */
    static void uploadHalves(DeviceBuffer target, long at, MemorySegment fp32, long count, float factor) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment halves = arena.allocate(count * Short.BYTES, 64);
            // through heap arrays a block at a time: bulk copies, not an accessor call per weight
            float[] block = new float[(int) Math.min(count, UPLOAD_BLOCK)];
            short[] rounded = new short[block.length];
            for (long start = 0; start < count; start += block.length) {
                int n = (int) Math.min(block.length, count - start);
                MemorySegment.copy(fp32, ValueLayout.JAVA_FLOAT, start * Float.BYTES, block, 0, n);
                for (int i = 0; i < n; i++) {
                    rounded[i] = Float.floatToFloat16(block[i] * factor);
                }
                MemorySegment.copy(rounded, 0, halves, ValueLayout.JAVA_SHORT, start * Short.BYTES, n);
            }
            target.copyFromHost(halves, at * Short.BYTES);
        }
    }

    /** Bytes on the device (what cuMemAlloc was asked for). */
    long bytes() {
        return buffers.stream().mapToLong(DeviceBuffer::byteSize).sum();
    }

    @Override
    public void close() {
        for (int i = buffers.size() - 1; i >= 0; i--) {
            buffers.get(i).close();
        }
        buffers.clear();
    }
}
