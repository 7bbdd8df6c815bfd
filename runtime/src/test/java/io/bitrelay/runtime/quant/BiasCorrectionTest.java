package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;
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

/** {@link BiasCorrection}: the rounded layer's mean output over the calibration rows is the FP32 layer's. */
@Timeout(30)
class BiasCorrectionTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final int ROWS = 300, IN = 40, OUT = 12;

    @Test
    void shouldRemoveTheMeanOutputErrorOfRoundedWeightsOnInputsFarFromZero() {
        SplittableRandom random = new SplittableRandom(3);
        double[] x = new double[ROWS * IN];
        for (int r = 0; r < ROWS; r++) {
            for (int k = 0; k < IN; k++) {
                x[r * IN + k] = random.nextGaussian() + (k % 8 == 3 ? 12 : 0); // shifted channels, as the outlier model has
            }
        }
        double[] sums = new double[IN];
        for (int r = 0; r < ROWS; r++) {
            for (int k = 0; k < IN; k++) {
                sums[k] += x[r * IN + k];
            }
        }
        Hessians.Moments moments = new Hessians.Moments(IN, new double[IN * IN], sums, ROWS);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment weight = arena.allocate(4L * OUT * IN);
            MemorySegment bias = arena.allocate(4L * OUT);
            for (int e = 0; e < OUT * IN; e++) {
                weight.setAtIndex(F32, e, (float) (random.nextGaussian() * 0.1));
            }
            for (int j = 0; j < OUT; j++) {
                bias.setAtIndex(F32, j, (float) random.nextGaussian());
            }
            Linear fp32 = new Linear(weight, bias, OUT, IN);
            PackedWeights packed = PackedWeights.quantize(fp32, 4, 0, true, arena);
            Linear corrected = BiasCorrection.apply(fp32, packed, moments.meanForLinear(null, null), arena);
            Linear uncorrected = new Linear(weight, bias, OUT, IN);
            double before = meanOutputError(x, fp32, packed, uncorrected);
            double after = meanOutputError(x, fp32, packed, corrected);
            assertTrue(before > 1e-2, "rounding must leave a mean error to remove, got " + before);
            assertTrue(after < 1e-4 * before, "mean output error " + after + " after correction, " + before + " before");
        }
    }

    /** The mean as the linear reads it: minus the centre, then gathered as its columns are. */
    @Test
    void shouldShiftAndPermuteTheMeanAsTheLinearReadsItsInput() {
        Hessians.Moments moments = new Hessians.Moments(3, new double[9], new double[] {10, 20, 30}, 10);
        assertArrayEquals(new double[] {1, 2, 3}, moments.meanForLinear(null, null), 0);
        assertArrayEquals(new double[] {2.5, 0.5, 1.5}, moments.meanForLinear(new float[] {0.5f, 0.5f, 0.5f}, new int[] {2, 0, 1}),
                1e-12);
    }

    @Test
    void shouldOnlyBeAskedOfGptqRecipes() {
        assertThrows(IllegalArgumentException.class, () -> new QuantRecipe("x", false, null,
                new LowBitScheme(4, 0, 16, null, true, true), false, false));
        assertEquals(QuantRecipe.W4A16, QuantRecipe.W4A16.withBiasCorrection(true), "RTN recipes have no moments");
        assertTrue(QuantRecipe.W4A16_GPTQ.withBiasCorrection(true).lowBit().biasCorrection());
    }

    /** Largest |mean over rows of (Ŵx + b') − (Wx + b)| over the outputs. */
    private static double meanOutputError(double[] x, Linear fp32, PackedWeights packed, Linear rounded) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment w = arena.allocate(4L * OUT * IN);
            packed.dequantize(w);
            double worst = 0;
            for (int j = 0; j < OUT; j++) {
                double sum = 0;
                for (int r = 0; r < ROWS; r++) {
                    double exact = fp32.bias().getAtIndex(F32, j);
                    double approx = rounded.bias().getAtIndex(F32, j);
                    for (int k = 0; k < IN; k++) {
                        exact += fp32.weight().getAtIndex(F32, (long) j * IN + k) * x[r * IN + k];
                        approx += w.getAtIndex(F32, (long) j * IN + k) * x[r * IN + k];
                    }
                    sum += approx - exact;
                }
                worst = Math.max(worst, Math.abs(sum / ROWS));
            }
            return worst;
        }
    }
}
