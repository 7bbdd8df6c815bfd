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
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LayerNorm against VectorMath.layerNorm (double sums on the CPU, float on the GPU: agreement to ~1e-6
 * relative), and the fused quantize against LayerNorm + Int8Quantize.quantizeRows (codes within 1, since a
 * value at a rounding boundary may fall either way).
 */
@Timeout(120)
class LayerNormKernelsTest {
    private static final float EPS = 1e-5f;
    private LayerNormKernels layerNorm;

    @BeforeEach
    void setUp() {
        layerNorm = new LayerNormKernels(GpuTestSupport.kernels());
    }

    @ParameterizedTest(name = "{0} rows={1} cols={2}")
    @CsvSource({"F32, 4, 768", "F16, 3, 12288", "F32, 9, 1000"})
    void shouldMatchTheCpuLayerNorm(DType output, int rows, int cols) {
        SplittableRandom random = new SplittableRandom(cols);
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create()) {
            Inputs in = Inputs.random(arena, rows, cols, random);
            MemorySegment expected = arena.allocate((long) rows * cols * Float.BYTES, 64);
            VectorMath.layerNorm(in.x, expected, rows, cols, in.gain, in.bias, EPS);
            long outBytes = (long) rows * cols * output.byteSize();
            try (DeviceBuffer dx = HostData.upload(in.x); DeviceBuffer dg = HostData.upload(in.gain);
                 DeviceBuffer db = HostData.upload(in.bias); DeviceBuffer dOut = DeviceBuffer.allocate(outBytes)) {
                layerNorm.layerNorm(output, dx.address(), dg.address(), db.address(), dOut.address(), rows, cols, EPS, stream);
                stream.synchronize();
                MemorySegment out = HostData.download(arena, dOut, outBytes);
                MemorySegment actual = output == DType.F16 ? HostData.fromHalf(arena, out) : out;
                double tolerance = output == DType.F16 ? 1e-3 : 1e-5;
                assertTrue(relativeError(actual, expected) < tolerance, "relative error " + relativeError(actual, expected));
            }
        }
    }

    @ParameterizedTest(name = "rows={0} cols={1}")
    @CsvSource({"5, 768", "2, 12288"})
    void shouldMatchLayerNormThenPerTokenQuantization(int rows, int cols) {
        SplittableRandom random = new SplittableRandom(rows + cols);
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create()) {
            Inputs in = Inputs.random(arena, rows, cols, random);
            MemorySegment normalised = arena.allocate((long) rows * cols * Float.BYTES, 64);
            VectorMath.layerNorm(in.x, normalised, rows, cols, in.gain, in.bias, EPS);
            MemorySegment expectedCodes = arena.allocate((long) rows * cols);
            float[] expectedScales = new float[rows];
            Int8Quantize.quantizeRows(normalised, rows, cols, expectedCodes, expectedScales);
            try (DeviceBuffer dx = HostData.upload(in.x); DeviceBuffer dg = HostData.upload(in.gain);
                 DeviceBuffer db = HostData.upload(in.bias); DeviceBuffer dq = DeviceBuffer.allocate((long) rows * cols);
                 DeviceBuffer ds = DeviceBuffer.allocate((long) rows * Float.BYTES)) {
                layerNorm.layerNormQuantize(dx.address(), dg.address(), db.address(), dq.address(), ds.address(), rows, cols,
                        EPS, stream);
                stream.synchronize();
                float[] scales = HostData.toArray(HostData.download(arena, ds, (long) rows * Float.BYTES));
                byte[] codes = HostData.download(arena, dq, (long) rows * cols).toArray(ValueLayout.JAVA_BYTE);
                byte[] expected = expectedCodes.toArray(ValueLayout.JAVA_BYTE);
                for (int i = 0; i < rows; i++) {
                    assertEquals(expectedScales[i], scales[i], expectedScales[i] * 1e-5, "scale of row " + i);
                }
                int differing = 0;
                for (int i = 0; i < codes.length; i++) {
                    assertTrue(Math.abs(codes[i] - expected[i]) <= 1, "code " + i + ": " + codes[i] + " vs " + expected[i]);
                    differing += codes[i] != expected[i] ? 1 : 0;
                }
                assertTrue(differing <= codes.length / 100, differing + " of " + codes.length + " codes differ");
            }
        }
    }

    private record Inputs(MemorySegment x, MemorySegment gain, MemorySegment bias) {
        static Inputs random(Arena arena, int rows, int cols, SplittableRandom random) {
            MemorySegment x = HostData.floats(arena, rows, cols, 1f, random);
            for (long i = 0; i < (long) rows * cols; i++) {
                x.setAtIndex(HostData.F32, i, x.getAtIndex(HostData.F32, i) + 3f); // a non-zero mean
            }
            MemorySegment gain = HostData.floats(arena, 1, cols, 0.2f, random);
            for (int j = 0; j < cols; j++) {
                gain.setAtIndex(HostData.F32, j, 1f + gain.getAtIndex(HostData.F32, j) / 40f);
            }
            return new Inputs(x, gain, HostData.floats(arena, 1, cols, 0.1f, random));
        }
    }

    private static double relativeError(MemorySegment actual, MemorySegment expected) {
        double diff = 0;
        double norm = 0;
        for (long i = 0; i < expected.byteSize() / Float.BYTES; i++) {
            double e = expected.getAtIndex(HostData.F32, i);
            double d = actual.getAtIndex(HostData.F32, i) - e;
            diff += d * d;
            norm += e * e;
        }
        return Math.sqrt(diff / norm);
    }
}
