package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.cuda.HostData;
import io.bitrelay.runtime.ops.cpu.Int8Quantize;
import io.bitrelay.runtime.ops.cpu.VectorMath;
import io.bitrelay.runtime.tensor.DType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** GPU quantization is bit-exact with Int8Quantize.quantizeRows (FP16 input: on the FP16-rounded values). */
@Timeout(120)
class QuantizeKernelsTest {
    private QuantizeKernels quantize;

    @BeforeEach
    void setUp() {
        quantize = new QuantizeKernels(GpuTestSupport.kernels());
    }

    @ParameterizedTest(name = "{0} relu={1} rows={2} cols={3}")
    @CsvSource({"F32, false, 5, 1000", "F16, false, 3, 12288", "F32, true, 17, 257", "F16, true, 2, 4096",
            "F32, false, 1, 1"})
    void shouldMatchTheCpuQuantizationBitForBit(DType input, boolean relu, int rows, int cols) {
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create()) {
            MemorySegment x = HostData.floats(arena, rows, cols, 2f, new SplittableRandom(rows * 31L + cols));
            x.asSlice(0, (long) cols * Float.BYTES).fill((byte) 0); // an all-zero row: scale 1, codes 0
            MemorySegment deviceInput = input == DType.F16 ? HostData.toHalf(arena, x) : x;
            MemorySegment reference = input == DType.F16 ? HostData.fromHalf(arena, deviceInput) : x;
            if (relu) {
                VectorMath.reluInPlace(reference, (long) rows * cols);
            }
            MemorySegment expectedCodes = arena.allocate((long) rows * cols);
            float[] expectedScales = new float[rows];
            Int8Quantize.quantizeRows(reference, rows, cols, expectedCodes, expectedScales);

            try (DeviceBuffer dx = HostData.upload(deviceInput);
                 DeviceBuffer dq = DeviceBuffer.allocate((long) rows * cols);
                 DeviceBuffer ds = DeviceBuffer.allocate((long) rows * Float.BYTES)) {
                dq.fill((byte) 0x55, stream);
                if (relu) {
                    quantize.reluQuantizeRows(input, dx.address(), dq.address(), ds.address(), rows, cols, stream);
                } else {
                    quantize.quantizeRows(input, dx.address(), dq.address(), ds.address(), rows, cols, stream);
                }
                stream.synchronize();
                MemorySegment codes = HostData.download(arena, dq, (long) rows * cols);
                MemorySegment scales = HostData.download(arena, ds, (long) rows * Float.BYTES);
                assertArrayEquals(expectedScales, HostData.toArray(scales));
                assertArrayEquals(expectedCodes.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE),
                        codes.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            }
        }
    }
}
