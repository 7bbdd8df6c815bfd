package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.cuda.HostData;
import io.bitrelay.runtime.ops.cpu.Int8Quantize;
import io.bitrelay.runtime.ops.cpu.VectorMath;
import io.bitrelay.runtime.tensor.DType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** The epilogue is bit-exact with Int8Quantize.dequantize (+ VectorMath.addInPlace for the residual). */
@Timeout(120)
class DequantizeKernelTest {
    private DequantizeKernel dequantize;

    @BeforeEach
    void setUp() {
        dequantize = new DequantizeKernel(GpuTestSupport.kernels());
    }

    @ParameterizedTest(name = "{0} bias={1} residual={2} rows={3} cols={4}")
    @CsvSource({"F32, true, false, 7, 1000", "F32, false, true, 3, 300", "F16, true, true, 16, 4096",
            "F16, false, false, 1, 77"})
    void shouldMatchTheCpuEpilogueBitForBit(DType output, boolean withBias, boolean withResidual, int rows, int cols) {
        SplittableRandom random = new SplittableRandom(rows * 1000L + cols);
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create()) {
            MemorySegment acc = arena.allocate((long) rows * cols * 4, 64);
            for (long i = 0; i < (long) rows * cols; i++) {
                acc.setAtIndex(HostData.I32, i, random.nextInt(-4_000_000, 4_000_000));
            }
            float[] rowScales = new float[rows];
            float[] colScales = new float[cols];
            for (int i = 0; i < rows; i++) {
                rowScales[i] = (float) random.nextDouble(1e-3, 0.1);
            }
            for (int j = 0; j < cols; j++) {
                colScales[j] = (float) random.nextDouble(1e-4, 0.01);
            }
            MemorySegment bias = withBias ? HostData.floats(arena, 1, cols, 0.5f, random) : null;
            MemorySegment residual = HostData.floats(arena, rows, cols, 1f, random);
            if (output == DType.F16) {
                residual = HostData.fromHalf(arena, HostData.toHalf(arena, residual)); // what an FP16 stream holds
            }
            MemorySegment expected = arena.allocate((long) rows * cols * Float.BYTES, 64);
            Int8Quantize.dequantize(acc, rows, cols, rowScales, colScales, bias, expected);
            if (withResidual) {
                VectorMath.addInPlace(expected, residual, (long) rows * cols);
            }
            MemorySegment deviceResidual = output == DType.F16 ? HostData.toHalf(arena, residual) : residual;
            long outBytes = (long) rows * cols * (output == DType.F16 ? 2 : 4);
            try (DeviceBuffer dAcc = HostData.upload(acc);
                 DeviceBuffer dRow = HostData.upload(copy(arena, rowScales));
                 DeviceBuffer dCol = HostData.upload(copy(arena, colScales));
                 DeviceBuffer dBias = withBias ? HostData.upload(bias) : null;
                 DeviceBuffer dOut = withResidual ? HostData.upload(deviceResidual) : DeviceBuffer.allocate(outBytes)) {
                dequantize.dequantize(output, dAcc.address(), dRow.address(), dCol.address(),
                        dBias == null ? 0 : dBias.address(), withResidual ? dOut.address() : 0, dOut.address(), rows, cols,
                        stream);
                stream.synchronize();
                MemorySegment out = HostData.download(arena, dOut, outBytes);
                if (output == DType.F16) {
                    MemorySegment expectedHalves = HostData.toHalf(arena, expected);
                    assertArrayEquals(expectedHalves.toArray(HostData.F16), out.toArray(HostData.F16));
                } else {
                    assertArrayEquals(HostData.toArray(expected), HostData.toArray(out));
                }
            }
        }
    }

    private static MemorySegment copy(Arena arena, float[] values) {
        MemorySegment segment = arena.allocate((long) values.length * Float.BYTES, 64);
        MemorySegment.copy(values, 0, segment, HostData.F32, 0, values.length);
        return segment;
    }
}
