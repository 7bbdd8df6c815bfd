package io.bitrelay.runtime.cuda;

import io.bitrelay.runtime.cuda.kernels.RandomFillKernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(120)
class DeviceMemoryTest {
    @Test
    void shouldRoundTripThroughDeviceAndPinnedMemory() {
        GpuTestSupport.requireGpu();
        int bytes = 3 << 20;
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             DeviceBuffer device = DeviceBuffer.allocate(bytes); PinnedHostBuffer pinned = PinnedHostBuffer.allocate(bytes)) {
            MemorySegment data = HostData.int8(arena, bytes, new SplittableRandom(3));
            device.copyFromHost(data);
            device.copyToHostAsync(pinned, 0, 0, bytes, stream);
            stream.synchronize();
            assertArrayEquals(data.toArray(ValueLayout.JAVA_BYTE), pinned.segment().toArray(ValueLayout.JAVA_BYTE));

            pinned.segment().fill((byte) 9);
            device.copyFromHostAsync(pinned, 16, 32, 1024, stream);
            stream.synchronize();
            MemorySegment back = HostData.download(arena, device, bytes);
            assertEquals(9, back.get(ValueLayout.JAVA_BYTE, 32));
            assertEquals(data.get(ValueLayout.JAVA_BYTE, 31), back.get(ValueLayout.JAVA_BYTE, 31));
            assertThrows(IndexOutOfBoundsException.class, () -> device.copyFromHost(data, 1));
        }
    }

    @Test
    void shouldTimeWorkWithEventsAndFillRandomData() {
        GpuTestSupport.requireGpu();
        RandomFillKernels fill = new RandomFillKernels(GpuTestSupport.kernels());
        long count = 1 << 24;
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             DeviceBuffer codes = DeviceBuffer.allocate(count); CudaEvent start = CudaEvent.create();
             CudaEvent end = CudaEvent.create()) {
            start.record(stream);
            fill.int8(codes.address(), count, 42, stream);
            end.record(stream);
            assertTrue(CudaEvent.elapsedMillis(start, end) > 0);
            byte[] host = HostData.download(arena, codes, count).toArray(ValueLayout.JAVA_BYTE);
            int min = 0;
            int max = 0;
            long zeros = 0;
            for (byte b : host) {
                min = Math.min(min, b);
                max = Math.max(max, b);
                zeros += b == 0 ? 1 : 0;
            }
            assertEquals(-127, min);
            assertEquals(127, max);
            assertTrue(zeros < count / 100, zeros + " zeros");
        }
    }
}
