package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(120)
class GptqTest {
    private static final int OUT = 48;
    private static final int IN = 96;
    private static final int ROWS = 600;

    @TempDir
    Path temp;

    @Test
    void shouldFactorTheDampedInverseHessian() {
        double[] x = correlatedInputs(ROWS, IN, 3);
        double[] h = gram(x, ROWS, IN);
        double[] damped = h.clone();
        double[] u = Gptq.inverseUpperFactor(damped, IN, Gptq.DEFAULT_DAMPING); // damped now holds H + λI
        for (int i = 0; i < IN; i++) {
            for (int j = 0; j < i; j++) {
                assertEquals(0.0, u[i * IN + j], "U is upper triangular at " + i + "," + j);
            }
        }
        // (UᵀU)(H + λI) = I
        for (int i = 0; i < IN; i++) {
            for (int j = 0; j < IN; j++) {
                double sum = 0;
                for (int k = 0; k < IN; k++) {
                    double inverse = 0;
                    for (int r = 0; r <= Math.min(i, k); r++) {
                        inverse += u[r * IN + i] * u[r * IN + k];
                    }
                    sum += inverse * damped[k * IN + j];
                }
                assertEquals(i == j ? 1.0 : 0.0, sum, 1e-8, "entry " + i + "," + j);
            }
        }
    }

    /** What GPTQ is for: on correlated inputs its rounding moves the layer's output far less than rounding to nearest. */
    @ParameterizedTest(name = "{0} bits, group {1}")
    @CsvSource({"4, 0", "4, 32", "3, 0", "3, 32"})
    void shouldMoveTheOutputLessThanRoundToNearest(int bits, int group) {
        double[] x = correlatedInputs(ROWS, IN, 5);
        double[] h = gram(x, ROWS, IN);
        try (Arena arena = Arena.ofShared()) {
            Linear linear = randomLinear(arena, 7);
            double rtn = outputError(x, linear, PackedWeights.quantize(linear, bits, group, arena), arena);
            double gptq = outputError(x, linear, Gptq.quantize(linear, h, bits, group, Gptq.DEFAULT_DAMPING, false, arena), arena);
            double actOrder = outputError(x, linear, Gptq.quantize(linear, h, bits, group, Gptq.DEFAULT_DAMPING, true, arena),
                    arena);
            String report = String.format("%d-bit g%d output error: round-to-nearest %.4e, GPTQ %.4e (%.2fx), act-order %.4e",
                    bits, group, rtn, gptq, rtn / gptq, actOrder);
            System.out.println(report);
            assertTrue(gptq < 0.7 * rtn && actOrder < 0.7 * rtn, report);
        }
    }

    /** The asymmetric path keeps GPTQ's gain over rounding to nearest on the same grids. */
    @ParameterizedTest(name = "{0} bits, group {1}, asymmetric")
    @CsvSource({"4, 0", "4, 32", "3, 0"})
    void shouldMoveTheOutputLessThanAsymmetricRoundToNearest(int bits, int group) {
        double[] x = correlatedInputs(ROWS, IN, 5);
        double[] h = gram(x, ROWS, IN);
        try (Arena arena = Arena.ofShared()) {
            Linear linear = skewed(randomLinear(arena, 7), arena);
            Gptq.Factor factor = Gptq.factor(h, IN, Gptq.DEFAULT_DAMPING, false);
            double rtn = outputError(x, linear, PackedWeights.quantize(linear, bits, group, true, arena), arena);
            double gptq = outputError(x, linear, Gptq.quantize(linear, factor, bits, group, true, arena), arena);
            double gptqSymmetric = outputError(x, linear, Gptq.quantize(linear, factor, bits, group, false, arena), arena);
            String report = String.format("%d-bit g%d skewed rows: asymmetric RTN %.4e, asymmetric GPTQ %.4e, symmetric GPTQ %.4e",
                    bits, group, rtn, gptq, gptqSymmetric);
            assertTrue(gptq < 0.7 * rtn, report);
            assertTrue(gptq < 0.8 * gptqSymmetric, report);
        }
    }

    /**
     * With uncorrelated inputs (diagonal H) no error has anywhere to go: GPTQ must pick exactly the codes and grids
     * of rounding to nearest, asymmetric as well as symmetric.
     */
    @Test
    void shouldEqualRoundToNearestWhenTheInputsAreUncorrelated() {
        double[] h = new double[IN * IN];
        for (int i = 0; i < IN; i++) {
            h[i * IN + i] = 1 + i % 5;
        }
        try (Arena arena = Arena.ofShared()) {
            Linear linear = skewed(randomLinear(arena, 3), arena);
            for (boolean asymmetric : new boolean[] {false, true}) {
                PackedWeights rtn = PackedWeights.quantize(linear, 4, 0, asymmetric, arena);
                PackedWeights gptq = Gptq.quantize(linear, Gptq.factor(h, IN, Gptq.DEFAULT_DAMPING, false), 4, 0, asymmetric,
                        arena);
                byte[] a = new byte[IN];
                byte[] b = new byte[IN];
                for (int j = 0; j < OUT; j++) {
                    rtn.unpackRow(j, a);
                    gptq.unpackRow(j, b);
                    assertArrayEquals(a, b, "row " + j + " asymmetric " + asymmetric);
                    assertEquals(rtn.scale(j, 0), gptq.scale(j, 0), "row " + j);
                    assertEquals(rtn.zero(j, 0), gptq.zero(j, 0), "row " + j);
                }
            }
        }
    }

    @Test
    void shouldDropColumnsCalibrationNeverActivated() {
        double[] x = correlatedInputs(ROWS, IN, 9);
        for (int r = 0; r < ROWS; r++) {
            x[r * IN + 5] = 0; // channel 5 silent
        }
        try (Arena arena = Arena.ofShared()) {
            PackedWeights packed = Gptq.quantize(randomLinear(arena, 2), gram(x, ROWS, IN), 4, 0, Gptq.DEFAULT_DAMPING, arena);
            byte[] codes = new byte[IN];
            for (int j = 0; j < OUT; j++) {
                packed.unpackRow(j, codes);
                assertEquals(0, codes[5], "row " + j + " of a dead column");
            }
        }
    }

    @Test
    void shouldRefuseAHessianOfTheWrongSize() {
        try (Arena arena = Arena.ofShared()) {
            Linear linear = randomLinear(arena, 1);
            assertThrows(IllegalArgumentException.class,
                    () -> Gptq.quantize(linear, new double[IN * IN - 1], 4, 0, Gptq.DEFAULT_DAMPING, arena));
        }
    }

    /** The moments of shifted, permuted inputs come from the unshifted ones exactly (no second pass needed). */
    @Test
    void shouldShiftAndPermuteMomentsAsTheInputsWouldBe() {
        int width = 12;
        int rows = 40;
        double[] x = correlatedInputs(rows, width, 13);
        float[] centre = new float[width];
        int[] permutation = new int[width];
        for (int c = 0; c < width; c++) {
            centre[c] = c % 3 == 0 ? 7.5f - c : 0.25f * c;
            permutation[c] = (c * 5 + 3) % width;
        }
        double[] sums = new double[width];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < width; c++) {
                sums[c] += x[r * width + c];
            }
        }
        Hessians.Moments moments = new Hessians.Moments(width, gram(x, rows, width), sums, rows);
        double[] transformed = new double[rows * width];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < width; c++) {
                transformed[r * width + c] = x[r * width + permutation[c]] - centre[permutation[c]];
            }
        }
        double[] expected = gram(transformed, rows, width);
        double[] actual = moments.forLinear(centre, permutation);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-9 * (1 + Math.abs(expected[i])), "entry " + i);
        }
    }

    @Test
    void shouldCollectTheMomentsOfEveryLinearInput() {
        int width = 40;
        int[] steps = {300, 17, 260}; // blocks of 256 rows, and partial ones
        HessianCollector collector = new HessianCollector();
        double[] all = new double[0];
        Random random = new Random(4);
        try (Arena arena = Arena.ofShared()) {
            for (int rows : steps) {
                MemorySegment segment = arena.allocate((long) rows * width * Float.BYTES);
                double[] step = new double[rows * width];
                for (int i = 0; i < step.length; i++) {
                    float v = (float) (random.nextGaussian() * (i % width == 3 ? 20 : 1));
                    segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, v);
                    step[i] = v;
                }
                collector.observe(2, ActivationSite.FC2_INPUT, segment, rows, width);
                collector.observe(2, ActivationSite.KEYS, segment, rows, width); // not a linear input: ignored
                double[] joined = new double[all.length + step.length];
                System.arraycopy(all, 0, joined, 0, all.length);
                System.arraycopy(step, 0, joined, all.length, step.length);
                all = joined;
            }
        }
        int rows = all.length / width;
        Hessians hessians = collector.hessians();
        assertEquals(1, hessians.size());
        Hessians.Moments moments = hessians.get(2, ActivationSite.FC2_INPUT);
        assertEquals(rows, moments.rows());
        double[] expected = gram(all, rows, width);
        for (int i = 0; i < width; i++) {
            for (int j = 0; j < width; j++) {
                // float blocks: accurate relative to the entry's scale, √(H_ii H_jj), not to a cancelled-out value
                double scale = Math.sqrt(expected[i * width + i] * expected[j * width + j]);
                assertEquals(expected[i * width + j], moments.xtx()[i * width + j], 1e-6 * scale, "XᵀX entry " + i + "," + j);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> hessians.get(2, ActivationSite.QKV_INPUT));
    }

    @Test
    void shouldRefuseMomentsOverItsBudgetNamingTheSizes() {
        HessianCollector collector = new HessianCollector(3 * (64L * 64 + 64) * Double.BYTES);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment rows = arena.allocate(8L * 128 * Float.BYTES);
            collector.observe(0, ActivationSite.QKV_INPUT, rows, 8, 64);
            collector.observe(0, ActivationSite.OUT_PROJ_INPUT, rows, 8, 64);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> collector.observe(0, ActivationSite.FC2_INPUT, rows, 8, 128));
            assertTrue(e.getMessage().contains("layer 0 fc2_input") && e.getMessage().contains("budget"), e.getMessage());
        }
    }

    /**
     * Whole recipes on the tiny outlier model: every linear becomes packed weights, and GPTQ's logits stay closer
     * to FP32 than round-to-nearest's, weight-only and with RPTQ 8-bit activations.
     */
    @Test
    void shouldBringLowBitRecipesCloserToFp32() {
        Path checkpoint = QuantTestModels.writeTinyWithOutliers(temp.resolve("tiny-outliers"));
        try (OptModel model = OptModel.load(checkpoint)) {
            HessianCollector moments = new HessianCollector();
            CalibrationStats stats = Calibration.run(model, QuantTestModels.randomTokens(1024, 41), 16, 64, "random",
                    Progress.NONE, moments);
            Hessians hessians = moments.hessians();
            List<int[]> evaluation = List.of(QuantTestModels.randomTokens(48, 42), QuantTestModels.randomTokens(48, 43));
            float[][] reference = QuantTestModels.logits(model, evaluation);
            // Shifting alone already removes most of the rounding error's constant part on this model, so GPTQ's
            // gain on top of it is smaller (measured 1.25x; 3.5x without shifting).
            Object[][] cases = {{QuantRecipe.W4A16, QuantRecipe.W4A16_GPTQ, 0.5}, {QuantRecipe.W4A16_SHIFT,
                    QuantRecipe.W4A16_SHIFT_GPTQ, 0.95}, {QuantRecipe.W4A8_RPTQ, QuantRecipe.W4A8_RPTQ_GPTQ, 0.5}};
            for (Object[] c : cases) {
                QuantRecipe rounded = (QuantRecipe) c[0];
                QuantRecipe compensated = (QuantRecipe) c[1];
                double nearest = error(model, rounded, stats, hessians, evaluation, reference);
                double gptq = error(model, compensated, stats, hessians, evaluation, reference);
                String report = String.format("logits MSE vs FP32: %s %.3e, %s %.3e (%.2fx)", rounded.name(), nearest,
                        compensated.name(), gptq, nearest / gptq);
                System.out.println(report);
                assertTrue(gptq < (double) c[2] * nearest, report);
            }
            assertThrows(IllegalArgumentException.class, () -> RecipeApplier.apply(model, QuantRecipe.W4A16_GPTQ, stats, 0.5f, 8, null));
        }
    }

    /**
     * Layer by layer: layer 0 sees the same inputs as in the one-pass calibration (the embeddings), so its codes
     * are identical; later layers see the quantized prefix's outputs, so theirs move; the result is as close to
     * FP32 as the one-pass GPTQ and far closer than round-to-nearest.
     */
    @Test
    void shouldQuantizeLayerByLayerFromTheQuantizedPrefix() {
        Path checkpoint = QuantTestModels.writeTinyWithOutliers(temp.resolve("tiny-outliers-sequential"));
        int[] tokens = QuantTestModels.randomTokens(1024, 41);
        try (OptModel model = OptModel.load(checkpoint)) {
            HessianCollector moments = new HessianCollector();
            CalibrationStats stats = Calibration.run(model, tokens, 16, 64, "random", Progress.NONE, moments);
            QuantPlan plan = QuantPlanner.plan(QuantRecipe.W4A16_GPTQ, stats, 0.5f, 8);
            List<int[]> evaluation = List.of(QuantTestModels.randomTokens(48, 42), QuantTestModels.randomTokens(48, 43));
            float[][] reference = QuantTestModels.logits(model, evaluation);
            try (OptModel onePass = RecipeApplier.apply(model, plan, moments.hessians());
                 OptModel sequential = SequentialGptq.fromWindows(model, plan,
                         io.bitrelay.runtime.eval.TokenWindows.split(tokens, 64, 16), Progress.NONE);
                 OptModel nearest = RecipeApplier.apply(model, QuantRecipe.W4A16, stats, 0.5f)) {
                assertEquals(0, differingCodes(onePass, sequential, 0), "layer 0: the same inputs, the same codes");
                assertTrue(differingCodes(onePass, sequential, 1) > 0, "layer 1 rounds against the quantized layer 0");
                double rtn = QuantTestModels.meanSquaredError(reference, QuantTestModels.logits(nearest, evaluation));
                double one = QuantTestModels.meanSquaredError(reference, QuantTestModels.logits(onePass, evaluation));
                double seq = QuantTestModels.meanSquaredError(reference, QuantTestModels.logits(sequential, evaluation));
                String report = String.format("logits MSE vs FP32: w4a16 %.3e, GPTQ one pass %.3e, layer by layer %.3e",
                        rtn, one, seq);
                System.out.println(report);
                assertTrue(seq < 0.5 * rtn && seq < 1.5 * one, report);
            }
        }
    }

    private static long differingCodes(OptModel a, OptModel b, int layer) {
        PackedWeights x = assertInstanceOf(WeightOnlyLinear.class, a.weights().layers()[layer].fc1()).weights();
        PackedWeights y = assertInstanceOf(WeightOnlyLinear.class, b.weights().layers()[layer].fc1()).weights();
        byte[] rowX = new byte[x.inFeatures()];
        byte[] rowY = new byte[y.inFeatures()];
        long differing = 0;
        for (int j = 0; j < x.outFeatures(); j++) {
            x.unpackRow(j, rowX);
            y.unpackRow(j, rowY);
            for (int k = 0; k < rowX.length; k++) {
                differing += rowX[k] != rowY[k] ? 1 : 0;
            }
        }
        return differing;
    }

    @Test
    void shouldNameGptqVariantsOfAnyLowBitRecipe() {
        assertEquals(QuantRecipe.W4A16_GPTQ, QuantRecipe.byName("w4a16-gptq"));
        QuantRecipe grouped = QuantRecipe.byName("w4a4-rptq-g128-shift-gptq");
        assertTrue(grouped.gptq() && grouped.shifting() && grouped.lowBit().groupSize() == 128, grouped.toString());
        assertThrows(IllegalArgumentException.class, () -> QuantRecipe.byName("w8a8-smoothquant-gptq"));
        assertThrows(IllegalArgumentException.class, () -> QuantRecipe.byName("w4a16-gptq-gptq"));
    }

    private static double error(OptModel model, QuantRecipe recipe, CalibrationStats stats, Hessians hessians,
                                List<int[]> evaluation, float[][] reference) {
        try (OptModel quantized = RecipeApplier.apply(model, recipe, stats, 0.5f, 8, hessians)) {
            for (LayerWeights layer : quantized.weights().layers()) {
                for (LinearLayer linear : List.of(layer.qProj(), layer.fc2())) {
                    assertTrue(linear instanceof WeightOnlyLinear || linear instanceof LowBitLinear, linear.getClass().getName());
                }
            }
            return QuantTestModels.meanSquaredError(reference, QuantTestModels.logits(quantized, evaluation));
        }
    }

    /** Rows of a few shared factors plus noise, two channels with large offsets: correlated, like LLM activations. */
    private static double[] correlatedInputs(int rows, int width, long seed) {
        Random random = new Random(seed);
        int factors = 6;
        double[][] loadings = new double[factors][width];
        for (double[] loading : loadings) {
            for (int c = 0; c < width; c++) {
                loading[c] = random.nextGaussian();
            }
        }
        double[] x = new double[rows * width];
        for (int r = 0; r < rows; r++) {
            double[] f = new double[factors];
            for (int i = 0; i < factors; i++) {
                f[i] = random.nextGaussian();
            }
            for (int c = 0; c < width; c++) {
                double v = 0.3 * random.nextGaussian() + (c % 17 == 4 ? 6 : 0);
                for (int i = 0; i < factors; i++) {
                    v += f[i] * loadings[i][c];
                }
                x[r * width + c] = (float) v;
            }
        }
        return x;
    }

    private static double[] gram(double[] x, int rows, int width) {
        double[] h = new double[width * width];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < width; i++) {
                double xi = x[r * width + i];
                for (int j = 0; j < width; j++) {
                    h[i * width + j] += xi * x[r * width + j];
                }
            }
        }
        return h;
    }

    private static Linear randomLinear(Arena arena, long seed) {
        Random random = new Random(seed);
        MemorySegment weight = arena.allocate((long) OUT * IN * Float.BYTES, 64);
        for (int i = 0; i < OUT * IN; i++) {
            weight.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (random.nextGaussian() / Math.sqrt(IN)));
        }
        return new Linear(weight, null, OUT, IN);
    }

    /** The same weights shifted by +1.5 standard deviations in every other row: rows that lean to one side. */
    private static Linear skewed(Linear linear, Arena arena) {
        MemorySegment weight = arena.allocate((long) OUT * IN * Float.BYTES, 64);
        for (int j = 0; j < OUT; j++) {
            for (int k = 0; k < IN; k++) {
                float w = linear.weight().getAtIndex(ValueLayout.JAVA_FLOAT, (long) j * IN + k);
                weight.setAtIndex(ValueLayout.JAVA_FLOAT, (long) j * IN + k, j % 2 == 0 ? w + 1.5f / (float) Math.sqrt(IN) : w);
            }
        }
        return new Linear(weight, null, OUT, IN);
    }

    /** Σ over rows and outputs of ((Ŵ − W) x)². */
    private static double outputError(double[] x, Linear linear, PackedWeights packed, Arena arena) {
        MemorySegment dequantized = arena.allocate((long) OUT * IN * Float.BYTES, 64);
        packed.dequantize(dequantized);
        double total = 0;
        for (int r = 0; r < ROWS; r++) {
            for (int j = 0; j < OUT; j++) {
                double e = 0;
                for (int k = 0; k < IN; k++) {
                    double d = dequantized.getAtIndex(ValueLayout.JAVA_FLOAT, (long) j * IN + k)
                            - linear.weight().getAtIndex(ValueLayout.JAVA_FLOAT, (long) j * IN + k);
                    e += d * x[r * IN + k];
                }
                total += e * e;
            }
        }
        return total;
    }
}
