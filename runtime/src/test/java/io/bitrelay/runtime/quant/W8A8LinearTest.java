package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.ops.cpu.ReferenceMatMul;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class W8A8LinearTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    @Test
    void shouldBeExactWhenWeightsAndInputsAreOnTheInt8Grid() {
        int rows = 9, in = 70, out = 33;
        SplittableRandom random = new SplittableRandom(1);
        try (Arena arena = Arena.ofShared()) {
            // Integers in [-127, 127] with a ±127 in every row: every scale is exactly 1.
            MemorySegment w = integers(arena, random, out, in);
            MemorySegment x = integers(arena, random, rows, in);
            MemorySegment bias = gaussian(arena, random, out, 1.0);
            Linear fp32 = new Linear(w, bias, out, in);
            for (ActivationQuantization scheme : ActivationQuantization.values()) {
                W8A8Linear q = W8A8Linear.quantize(fp32, scheme, 127f, arena);
                MemorySegment expected = arena.allocate((long) rows * out * Float.BYTES);
                MemorySegment actual = arena.allocate((long) rows * out * Float.BYTES);
                ReferenceMatMul.matmulF32(x, w, bias, expected, rows, out, in);
                q.apply(x, rows, actual);
                for (long i = 0; i < (long) rows * out; i++) {
                    assertEquals(expected.getAtIndex(F32, i), actual.getAtIndex(F32, i), 0f, scheme + " element " + i);
                }
            }
        }
    }

    /**
     * Each element's error is bounded by rounding: x = s_x·(q_x + e_x), w = s_w·(q_w + e_w) with |e| ≤ ½, so
     * |Σ x·w − Σ s_x q_x s_w q_w| ≤ Σ (|x|·s_w/2 + |w|·s_x/2 + s_x s_w/4).
     */
    @ParameterizedTest(name = "{0} rows={1} in={2} out={3}")
    @CsvSource({"PER_TOKEN_DYNAMIC, 1, 64, 48", "PER_TOKEN_DYNAMIC, 37, 256, 130", "PER_TOKEN_DYNAMIC, 300, 128, 64",
            "PER_TENSOR_STATIC, 3, 64, 48", "PER_TENSOR_STATIC, 37, 256, 130"})
    void shouldStayWithinTheRoundingBoundOfFp32(ActivationQuantization scheme, int rows, int in, int out) {
        SplittableRandom random = new SplittableRandom(rows * 31L + in);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment w = gaussian(arena, random, (long) out * in, 0.1);
            MemorySegment x = gaussian(arena, random, (long) rows * in, 1.0);
            MemorySegment bias = gaussian(arena, random, out, 0.5);
            float tensorAbsMax = 0f;
            for (long i = 0; i < (long) rows * in; i++) {
                tensorAbsMax = Math.max(tensorAbsMax, Math.abs(x.getAtIndex(F32, i)));
            }
            Linear fp32 = new Linear(w, bias, out, in);
            W8A8Linear q = W8A8Linear.quantize(fp32, scheme, tensorAbsMax, arena);
            MemorySegment expected = arena.allocate((long) rows * out * Float.BYTES);
            MemorySegment actual = arena.allocate((long) rows * out * Float.BYTES);
            ReferenceMatMul.matmulF32(x, w, bias, expected, rows, out, in);
            q.apply(x, rows, actual);

            float[] weightScales = q.weightScales();
            double errorSquares = 0, signalSquares = 0;
            for (int i = 0; i < rows; i++) {
                float rowAbsMax = 0f;
                for (int p = 0; p < in; p++) {
                    rowAbsMax = Math.max(rowAbsMax, Math.abs(x.getAtIndex(F32, (long) i * in + p)));
                }
                double sx = scheme == ActivationQuantization.PER_TOKEN_DYNAMIC ? rowAbsMax / 127.0 : q.staticScale();
                for (int j = 0; j < out; j++) {
                    double sw = weightScales[j];
                    double bound = 0;
                    for (int p = 0; p < in; p++) {
                        bound += Math.abs(x.getAtIndex(F32, (long) i * in + p)) * sw / 2
                                + Math.abs(w.getAtIndex(F32, (long) j * in + p)) * sx / 2 + sx * sw / 4;
                    }
                    double e = expected.getAtIndex(F32, (long) i * out + j);
                    double a = actual.getAtIndex(F32, (long) i * out + j);
                    assertTrue(Math.abs(a - e) <= bound * 1.001 + 1e-5, "(" + i + ", " + j + "): " + a + " vs " + e
                            + ", bound " + bound);
                    errorSquares += (a - e) * (a - e);
                    signalSquares += e * e;
                }
            }
            double relativeRms = Math.sqrt(errorSquares / signalSquares);
            assertTrue(relativeRms < 0.02, "relative RMS error " + relativeRms);
        }
    }

    @Test
    void shouldClipInputsBeyondTheStaticRange() {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment w = arena.allocate(2 * Float.BYTES);
            w.setAtIndex(F32, 0, 1f);
            w.setAtIndex(F32, 1, 1f);
            W8A8Linear q = W8A8Linear.quantize(new Linear(w, null, 1, 2), ActivationQuantization.PER_TENSOR_STATIC, 1f, arena);
            MemorySegment x = arena.allocate(2 * Float.BYTES);
            x.setAtIndex(F32, 0, 5f);   // clipped to the calibrated range, 1
            x.setAtIndex(F32, 1, -0.25f); // code rint(-31.75) = -32
            MemorySegment y = arena.allocate(Float.BYTES);
            q.apply(x, 1, y);
            assertEquals((127f - 32f) / 127f, y.getAtIndex(F32, 0), 1e-6f);
        }
    }

    private static MemorySegment integers(Arena arena, SplittableRandom random, int rows, int cols) {
        MemorySegment m = arena.allocate((long) rows * cols * Float.BYTES);
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                m.setAtIndex(F32, (long) i * cols + j, random.nextInt(-127, 128));
            }
            m.setAtIndex(F32, (long) i * cols + random.nextInt(cols), random.nextBoolean() ? 127f : -127f);
        }
        return m;
    }

    private static MemorySegment gaussian(Arena arena, SplittableRandom random, long count, double sigma) {
        MemorySegment m = arena.allocate(count * Float.BYTES);
        for (long i = 0; i < count; i++) {
            m.setAtIndex(F32, i, (float) (random.nextGaussian() * sigma));
        }
        return m;
    }
}
