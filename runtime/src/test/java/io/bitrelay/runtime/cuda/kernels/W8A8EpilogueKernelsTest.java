package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.cuda.HostData;
import io.bitrelay.runtime.ops.cpu.Int8Quantize;
import io.bitrelay.runtime.ops.cpu.VectorMath;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused W8A8 epilogues against their CPU chains: Int8Quantize.dequantize (+ addInPlace) then LayerNorm then
 * quantizeRows (residual stream bit-exact; codes within one step, as br_layernorm_quantize), and dequantize then
 * reluInPlace then quantizeRows (bit-exact). The row scales are read and replaced in one buffer, as the stage does.
 */
@Timeout(120)
class W8A8EpilogueKernelsTest {
    private static final float EPS = 1e-5f;
    private W8A8EpilogueKernels epilogues;

    @BeforeEach
    void setUp() {
        epilogues = new W8A8EpilogueKernels(GpuTestSupport.kernels());
    }

    @ParameterizedTest(name = "rows={0} cols={1} bias={2}")
    @CsvSource({"1, 12288, true", "5, 768, false", "64, 256, true"})
    void shouldMatchDequantizeResidualLayerNormQuantize(int rows, int cols, boolean withBias) {
        SplittableRandom random = new SplittableRandom(rows * 31L + cols);
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create()) {
            Epilogue in = Epilogue.random(arena, rows, cols, withBias, random);
            MemorySegment residual = HostData.floats(arena, rows, cols, 1f, random);
            MemorySegment gain = HostData.floats(arena, 1, cols, 1f, random);
            MemorySegment lnBias = HostData.floats(arena, 1, cols, 0.2f, random);
            MemorySegment expectedHidden = arena.allocate((long) rows * cols * Float.BYTES, 64);
            Int8Quantize.dequantize(in.acc, rows, cols, in.rowScales, in.colScales, in.bias, expectedHidden);
            VectorMath.addInPlace(expectedHidden, residual, (long) rows * cols);
            MemorySegment normalised = arena.allocate((long) rows * cols * Float.BYTES, 64);
            VectorMath.layerNorm(expectedHidden, normalised, rows, cols, gain, lnBias, EPS);
            MemorySegment expectedCodes = arena.allocate((long) rows * cols);
            float[] expectedScales = new float[rows];
            Int8Quantize.quantizeRows(normalised, rows, cols, expectedCodes, expectedScales);
            try (DeviceBuffer dAcc = HostData.upload(in.acc); DeviceBuffer dScales = HostData.upload(floats(arena, in.rowScales));
                 DeviceBuffer dCol = HostData.upload(floats(arena, in.colScales));
                 DeviceBuffer dBias = withBias ? HostData.upload(in.bias) : null;
                 DeviceBuffer dHidden = HostData.upload(residual); DeviceBuffer dGain = HostData.upload(gain);
                 DeviceBuffer dLnBias = HostData.upload(lnBias); DeviceBuffer dq = DeviceBuffer.allocate((long) rows * cols)) {
                epilogues.residualLayerNormQuantize(dAcc.address(), dScales.address(), dCol.address(),
                        dBias == null ? 0 : dBias.address(), dHidden.address(), dGain.address(), dLnBias.address(), dq.address(),
                        dScales.address(), rows, cols, EPS, stream);
                stream.synchronize();
                assertArrayEquals(HostData.toArray(expectedHidden),
                        HostData.toArray(HostData.download(arena, dHidden, (long) rows * cols * Float.BYTES)), "residual stream");
                float[] scales = HostData.toArray(HostData.download(arena, dScales, (long) rows * Float.BYTES));
                for (int i = 0; i < rows; i++) {
                    assertEquals(expectedScales[i], scales[i], expectedScales[i] * 1e-5, "scale of row " + i);
                }
                byte[] codes = HostData.download(arena, dq, (long) rows * cols).toArray(ValueLayout.JAVA_BYTE);
                byte[] expected = expectedCodes.toArray(ValueLayout.JAVA_BYTE);
                int differing = 0;
                for (int i = 0; i < codes.length; i++) {
                    assertTrue(Math.abs(codes[i] - expected[i]) <= 1, "code " + i + ": " + codes[i] + " vs " + expected[i]);
                    differing += codes[i] != expected[i] ? 1 : 0;
                }
                assertTrue(differing <= codes.length / 100, differing + " of " + codes.length + " codes differ");
            }
        }
    }

    @ParameterizedTest(name = "rows={0} cols={1} bias={2}")
    @CsvSource({"1, 49152, true", "7, 1024, false", "33, 512, true"})
    void shouldMatchDequantizeReluQuantizeBitForBit(int rows, int cols, boolean withBias) {
        SplittableRandom random = new SplittableRandom(rows * 17L + cols);
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create()) {
            Epilogue in = Epilogue.random(arena, rows, cols, withBias, random);
            MemorySegment values = arena.allocate((long) rows * cols * Float.BYTES, 64);
            Int8Quantize.dequantize(in.acc, rows, cols, in.rowScales, in.colScales, in.bias, values);
            VectorMath.reluInPlace(values, (long) rows * cols);
            MemorySegment expectedCodes = arena.allocate((long) rows * cols);
            float[] expectedScales = new float[rows];
            Int8Quantize.quantizeRows(values, rows, cols, expectedCodes, expectedScales);
            try (DeviceBuffer dAcc = HostData.upload(in.acc); DeviceBuffer dScales = HostData.upload(floats(arena, in.rowScales));
                 DeviceBuffer dCol = HostData.upload(floats(arena, in.colScales));
                 DeviceBuffer dBias = withBias ? HostData.upload(in.bias) : null;
                 DeviceBuffer dq = DeviceBuffer.allocate((long) rows * cols)) {
                epilogues.reluQuantize(dAcc.address(), dScales.address(), dCol.address(), dBias == null ? 0 : dBias.address(),
                        dq.address(), dScales.address(), rows, cols, stream);
                stream.synchronize();
                assertArrayEquals(expectedScales, HostData.toArray(HostData.download(arena, dScales, (long) rows * Float.BYTES)));
                assertArrayEquals(expectedCodes.toArray(ValueLayout.JAVA_BYTE),
                        HostData.download(arena, dq, (long) rows * cols).toArray(ValueLayout.JAVA_BYTE));
            }
        }
    }

    private record Epilogue(MemorySegment acc, float[] rowScales, float[] colScales, MemorySegment bias) {
        static Epilogue random(Arena arena, int rows, int cols, boolean withBias, SplittableRandom random) {
            MemorySegment acc = arena.allocate((long) rows * cols * Integer.BYTES, 64);
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
            return new Epilogue(acc, rowScales, colScales, withBias ? HostData.floats(arena, 1, cols, 0.5f, random) : null);
        }
    }

    private static MemorySegment floats(Arena arena, float[] values) {
        MemorySegment segment = arena.allocate((long) values.length * Float.BYTES, 64);
        MemorySegment.copy(values, 0, segment, ValueLayout.JAVA_FLOAT, 0, values.length);
        return segment;
    }
}
