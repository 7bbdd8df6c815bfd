package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.eval.TokenWindows;
import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.OptModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClusterRangeSearchTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    @TempDir
    Path temp;

    /**
     * The search's error is the consumer's output error of {@link LowBitLinear}'s own rounding: with identity weights
     * (G = I) it is Σ (x̂ − x)² of the layer's fake-quantized input, to float precision.
     */
    @Test
    void shouldMeasureTheErrorOfTheLayersOwnRounding() {
        int rows = 40;
        int width = 6;
        SplittableRandom random = new SplittableRandom(3);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = arena.allocate(4L * rows * width);
            float[] values = new float[rows * width];
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) (random.nextGaussian() * 2 + 0.3);
                x.setAtIndex(F32, i, values[i]);
            }
            Linear identity = identity(arena, width);
            float lo = -2.1f;
            float hi = 3.3f;
            LowBitLinear layer = LowBitLinear.quantize(identity, new LowBitScheme(8, 0, 4,
                    ActivationRanges.PER_CLUSTER_STATIC), new int[] {width}, new float[] {lo}, new float[] {hi}, null, arena);
            float[] xq = layer.fakeQuantizedInput(x, rows);
            double expected = 0;
            for (int i = 0; i < values.length; i++) {
                expected += (double) (xq[i] - values[i]) * (xq[i] - values[i]);
            }
            double[] gram = ClusterRangeSearch.gram(List.of(identity), new int[] {0, 1, 2, 3, 4, 5});
            double actual = new ClusterRangeSearch(4, ClusterRangeSearch.DEFAULT_RATIOS).error(lo, hi, gram, values, null);
            assertEquals(expected, actual, 1e-5 * expected);
        }
    }

    /**
     * A cluster whose calibrated range is set by rare spikes: at 4 bits the search clips it and the output error on
     * the sample drops well below the calibrated range's; a ReLU-like cluster (minimum 0) keeps its lower end at 0.
     */
    @Test
    void shouldClipRareSpikesAndKeepAReluFloor() {
        int rows = 2000;
        int width = 8;
        SplittableRandom random = new SplittableRandom(11);
        float[] data = new float[rows * width];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < 4; j++) { // cluster 0: Gaussian with a spike every 200 rows
                data[i * width + j] = (float) random.nextGaussian() * (i % 200 == 0 ? 12 : 1);
            }
            for (int j = 4; j < 8; j++) { // cluster 1: ReLU of a Gaussian, same spikes
                data[i * width + j] = (float) Math.max(0, random.nextGaussian() * (i % 200 == 7 ? 12 : 1));
            }
        }
        float[] min = new float[2];
        float[] max = new float[2];
        for (int c = 0; c < 2; c++) {
            min[c] = Float.POSITIVE_INFINITY;
            max[c] = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < rows; i++) {
                for (int j = 4 * c; j < 4 * c + 4; j++) {
                    min[c] = Math.min(min[c], data[i * width + j]);
                    max[c] = Math.max(max[c], data[i * width + j]);
                }
            }
        }
        int[] permutation = {0, 1, 2, 3, 4, 5, 6, 7};
        ClusterPlan calibrated = new ClusterPlan(permutation, new int[] {4, 8}, min, max);
        try (Arena arena = Arena.ofShared()) {
            Linear identity = identity(arena, width);
            ClusterRangeSearch search = new ClusterRangeSearch(4, ClusterRangeSearch.DEFAULT_RATIOS);
            ClusterPlan refined = search.refine(calibrated, List.of(identity), new ActivationSampler.Sample(data, rows, width), null);
            assertArrayEquals(permutation, refined.permutation());
            assertEquals(0f, refined.clusterMin(1), "the ReLU cluster keeps 0 as its lower end");
            for (int c = 0; c < 2; c++) {
                int[] channels = {4 * c, 4 * c + 1, 4 * c + 2, 4 * c + 3};
                double[] gram = ClusterRangeSearch.gram(List.of(identity), channels);
                float[] rowsOfCluster = new float[rows * 4];
                for (int i = 0; i < rows; i++) {
                    for (int a = 0; a < 4; a++) {
                        rowsOfCluster[i * 4 + a] = data[i * width + channels[a]];
                    }
                }
                double before = search.error(calibrated.clusterMin(c), calibrated.clusterMax(c), gram, rowsOfCluster, null);
                double after = search.error(refined.clusterMin(c), refined.clusterMax(c), gram, rowsOfCluster, null);
                assertTrue(refined.clusterMax(c) < 0.8f * calibrated.clusterMax(c), "cluster " + c + " clipped: " + refined);
                assertTrue(after < 0.7 * before, String.format("cluster %d: error %.3f with the calibrated range, %.3f "
                        + "after the search", c, before, after));
            }
        }
    }

    /** Values exactly on the calibrated range's code grid round without error: nothing beats it, the range stays. */
    @Test
    void shouldKeepARangeNothingImproves() {
        int width = 2;
        float[] data = new float[16 * width];
        for (int i = 0; i < 16; i++) { // 4 bits over [-8, 7]: scale 1, every integer a code
            data[i * width] = i - 8;
            data[i * width + 1] = 7 - i;
        }
        ClusterPlan calibrated = new ClusterPlan(new int[] {1, 0}, new int[] {2}, new float[] {-8}, new float[] {7});
        try (Arena arena = Arena.ofShared()) {
            ClusterPlan refined = new ClusterRangeSearch(4, ClusterRangeSearch.DEFAULT_RATIOS).refine(calibrated,
                    List.of(identity(arena, width)), new ActivationSampler.Sample(data, 16, width), null);
            assertEquals(calibrated, refined);
        }
    }

    @Test
    void shouldRefuseBadInputsNamingThem() {
        assertThrows(IllegalArgumentException.class, () -> new ClusterRangeSearch(5, ClusterRangeSearch.DEFAULT_RATIOS));
        assertThrows(IllegalArgumentException.class, () -> new ClusterRangeSearch(4, new float[0]));
        assertThrows(IllegalArgumentException.class, () -> new ClusterRangeSearch(4, new float[] {0.5f, -1f}));
        ClusterPlan plan = ClusterPlan.identity(4, -1, 1);
        try (Arena arena = Arena.ofShared()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ClusterRangeSearch(4,
                    ClusterRangeSearch.DEFAULT_RATIOS).refine(plan, List.of(identity(arena, 4)),
                    new ActivationSampler.Sample(new float[6], 2, 3), null));
            assertTrue(e.getMessage().contains("width 3"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> new SequentialGptq.RangeSearch(
                new ClusterRangeSearch(4, ClusterRangeSearch.DEFAULT_RATIOS), 0));
    }

    /**
     * What the search promises, on rows it never saw: the tiny outlier model's fc2 (ReLU inputs, 8 clusters, 4-bit
     * activations, 8-bit weights so the activations dominate), ranges searched on one set of calibration tokens,
     * output error against the FP32 layer measured through {@link LowBitLinear} on another.
     */
    @Test
    void shouldLowerTheLayersOutputErrorOnHeldOutRows() {
        Path checkpoint = QuantTestModels.writeTinyWithOutliers(temp.resolve("tiny-outliers-clip-layer"));
        try (OptModel model = OptModel.load(checkpoint); Arena arena = Arena.ofShared()) {
            ActivationSampler seen = new ActivationSampler(1024);
            CalibrationStats stats = Calibration.run(model, QuantTestModels.randomTokens(1024, 41), 16, 64, "random",
                    Progress.NONE, seen, RangeEstimator.BATCH_MEAN);
            ActivationSampler heldOut = new ActivationSampler(1024);
            Calibration.run(model, QuantTestModels.randomTokens(1024, 77), 16, 64, "random", Progress.NONE, heldOut,
                    RangeEstimator.BATCH_MEAN);
            int layer = 1;
            ActivationSite site = ActivationSite.FC2_INPUT;
            ClusterPlan calibrated = QuantPlanner.plan(QuantRecipe.byName("w4a4-rptq"), stats, 0.5f, 8).reorders()
                    .get(new CalibrationStats.Key(layer, site));
            Linear fc2 = (Linear) model.weights().layers()[layer].fc2();
            ClusterPlan searched = new ClusterRangeSearch(4, ClusterRangeSearch.DEFAULT_RATIOS).refine(calibrated,
                    List.of(fc2), seen.sample(layer, site), null);
            ActivationSampler.Sample test = heldOut.sample(layer, site);
            double before = outputError(fc2, calibrated, test, arena);
            double after = outputError(fc2, searched, test, arena);
            String report = String.format("layer %d fc2, held-out rows: output error %.4e with the calibrated ranges, "
                    + "%.4e searched (%.2fx)", layer, before, after, before / after);
            System.out.println(report);
            assertTrue(after < 0.8 * before, report);
        }
    }

    /**
     * The whole path, W4A4 RPTQ with GPTQ layer by layer on the tiny outlier model: with a search every layer's
     * cluster ranges move; a recipe without clusters is refused.
     */
    @Test
    void shouldSearchEveryLayerOfAnRptqGptqRecipe() {
        Path checkpoint = QuantTestModels.writeTinyWithOutliers(temp.resolve("tiny-outliers-clip"));
        int[] tokens = QuantTestModels.randomTokens(1024, 41);
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationStats stats = Calibration.run(model, tokens, 16, 64, "random", Progress.NONE, null,
                    RangeEstimator.BATCH_MEAN);
            QuantRecipe recipe = QuantRecipe.byName("w4a4-rptq-gptq").withAsymmetricWeights(true);
            QuantPlan plan = QuantPlanner.plan(recipe, stats, 0.5f, 8);
            List<int[]> windows = TokenWindows.split(tokens, 64, 4);
            SequentialGptq.RangeSearch search = new SequentialGptq.RangeSearch(new ClusterRangeSearch(4,
                    ClusterRangeSearch.DEFAULT_RATIOS), 256);
            try (OptModel calibratedModel = RecipeApplier.apply(model, plan, windows, null, Progress.NONE);
                 OptModel searchedModel = RecipeApplier.apply(model, plan, windows, search, Progress.NONE)) {
                for (int layer = 0; layer < model.weights().layers().length; layer++) {
                    float[] a = clusterMax((LowBitLinear) calibratedModel.weights().layers()[layer].fc1());
                    float[] b = clusterMax((LowBitLinear) searchedModel.weights().layers()[layer].fc1());
                    assertFalse(java.util.Arrays.equals(a, b), "layer " + layer + " fc1's ranges were searched");
                }
            }
            assertThrows(IllegalArgumentException.class, () -> RecipeApplier.apply(model, QuantPlanner.plan(
                    QuantRecipe.W4A16_GPTQ, stats, 0.5f, 8), windows, search, Progress.NONE));
        }
    }

    /** Σ ‖y − ŷ‖² over the rows: FP32 {@code linear} against it quantized (8-bit weights, 4-bit clusters of {@code plan}). */
    private static double outputError(Linear linear, ClusterPlan plan, ActivationSampler.Sample rows, Arena arena) {
        int in = linear.inFeatures();
        int out = linear.outFeatures();
        int[] permutation = plan.permutation();
        MemorySegment permuted = arena.allocate(4L * in * out); // columns in cluster order, read through the gather
        for (int o = 0; o < out; o++) {
            for (int j = 0; j < in; j++) {
                permuted.setAtIndex(F32, (long) o * in + j, linear.weight().getAtIndex(F32, (long) o * in + permutation[j]));
            }
        }
        int[] ends = new int[plan.clusters()];
        float[] min = new float[plan.clusters()];
        float[] max = new float[plan.clusters()];
        for (int c = 0; c < ends.length; c++) {
            ends[c] = plan.clusterEnd(c);
            min[c] = plan.clusterMin(c);
            max[c] = plan.clusterMax(c);
        }
        LowBitLinear quantized = LowBitLinear.quantize(new Linear(permuted, linear.bias(), out, in), new LowBitScheme(8, 0,
                4, ActivationRanges.PER_CLUSTER_STATIC), ends, min, max, permutation, arena);
        MemorySegment x = MemorySegment.ofArray(java.util.Arrays.copyOf(rows.rows(), rows.count() * in));
        MemorySegment exact = arena.allocate(4L * rows.count() * out);
        MemorySegment approximate = arena.allocate(4L * rows.count() * out);
        MemorySegment input = arena.allocate(4L * rows.count() * in);
        input.copyFrom(x);
        linear.apply(input, rows.count(), exact);
        quantized.apply(input, rows.count(), approximate);
        double error = 0;
        for (long k = 0; k < (long) rows.count() * out; k++) {
            double d = exact.getAtIndex(F32, k) - approximate.getAtIndex(F32, k);
            error += d * d;
        }
        return error;
    }

    private static float[] clusterMax(LowBitLinear linear) {
        return linear.tensors().stream().filter(t -> t.name().equals("cluster_max")).findFirst().orElseThrow()
                .data().toArray(ValueLayout.JAVA_FLOAT);
    }

    private static Linear identity(Arena arena, int width) {
        MemorySegment w = arena.allocate(4L * width * width);
        for (int j = 0; j < width; j++) {
            w.setAtIndex(F32, (long) j * width + j, 1f);
        }
        return new Linear(w, null, width, width);
    }
}
