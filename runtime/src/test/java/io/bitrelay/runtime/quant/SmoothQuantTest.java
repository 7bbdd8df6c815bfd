package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.OptModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class SmoothQuantTest {
    @TempDir
    static Path temp;
    static Path checkpoint;

    @BeforeAll
    static void writeModel() {
        checkpoint = QuantTestModels.writeTinyWithOutliers(temp.resolve("tiny-outliers"));
    }

    @Test
    void shouldComputeFactorsFromActivationAndWeightMaximaByThePapersFormula() {
        try (Arena arena = Arena.ofConfined()) {
            // Two consumers of a 3-channel activation; column maxima over both: [1, 4, 0].
            Linear a = linear(arena, 2, 3, 1f, -4f, 0f, 0.5f, 2f, 0f);
            Linear b = linear(arena, 1, 3, -0.25f, 1f, 0f);
            float[] activation = {4f, 1f, 0f};
            float[] half = SmoothQuant.factors(activation, List.of(a, b), 0.5f);
            assertEquals(2f, half[0], 1e-6f);     // sqrt(4) / sqrt(1)
            assertEquals(0.5f, half[1], 1e-6f);   // sqrt(1) / sqrt(4)
            assertEquals(1f, half[2], 1e-6f);     // both clamped to 1e-5: no division by zero
            float[] all = SmoothQuant.factors(activation, List.of(a, b), 1f);
            assertArrayEquals(new float[] {4f, 1f, 1e-5f}, all, 1e-6f); // α = 1: s = max|X|
            assertThrows(IllegalArgumentException.class, () -> SmoothQuant.factors(activation, List.of(a), 1.5f));
        }
    }

    @ParameterizedTest(name = "alpha={0}")
    @ValueSource(floats = {0.5f, 0.8f})
    void shouldComputeTheSameLogitsAfterFoldingBeforeQuantization(float alpha) {
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationStats stats = Calibration.run(model, QuantTestModels.randomTokens(256, 11), 8, 32, "random",
                    Progress.NONE);
            List<int[]> evaluation = List.of(QuantTestModels.randomTokens(40, 12), QuantTestModels.randomTokens(25, 13));
            float[][] original = QuantTestModels.logits(model, evaluation);
            try (Arena arena = Arena.ofShared()) {
                SmoothQuant.Result smoothed = SmoothQuant.smooth(model.weights(), stats, alpha, arena);
                try (OptModel folded = model.derive(smoothed.weights(), null)) {
                    float[][] after = QuantTestModels.logits(folded, evaluation);
                    double maxDifference = QuantTestModels.maxAbsDifference(original, after);
                    assertTrue(maxDifference < 1e-4, "max |Δlogit| = " + maxDifference);
                }
            }
        }
    }

    @Test
    void shouldFlattenTheOutlierChannelsAndPredictTheSmoothedRanges() {
        try (OptModel model = OptModel.load(checkpoint)) {
            int[] text = QuantTestModels.randomTokens(256, 14);
            CalibrationStats stats = Calibration.run(model, text, 8, 32, "random", Progress.NONE);
            try (Arena arena = Arena.ofShared()) {
                SmoothQuant.Result smoothed = SmoothQuant.smooth(model.weights(), stats, 0.5f, arena);
                try (OptModel folded = model.derive(smoothed.weights(), null)) {
                    CalibrationStats measured = Calibration.run(folded, text, 8, 32, "random", Progress.NONE);
                    for (int layer = 0; layer < model.config().numLayers(); layer++) {
                        for (ActivationSite site : List.of(ActivationSite.QKV_INPUT, ActivationSite.FC1_INPUT)) {
                            float[] predicted = smoothed.stats().get(layer, site).absMax();
                            float[] actual = measured.get(layer, site).absMax();
                            for (int j = 0; j < actual.length; j++) {
                                assertEquals(actual[j], predicted[j], 1e-3f * Math.max(1f, actual[j]),
                                        "layer " + layer + " " + site.key() + " channel " + j);
                            }
                            double before = spread(stats.get(layer, site).absMax());
                            double after = spread(actual);
                            assertTrue(after < before / 4, "layer " + layer + " " + site.key() + ": max/median "
                                    + before + " → " + after);
                        }
                    }
                }
            }
        }
    }

    /** max / median of per-channel absmax: how far the outlier channels stick out. */
    private static double spread(float[] absMax) {
        float[] sorted = absMax.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length - 1] / sorted[sorted.length / 2];
    }

    private static Linear linear(Arena arena, int out, int in, float... values) {
        MemorySegment weight = arena.allocate((long) out * in * Float.BYTES);
        MemorySegment.copy(values, 0, weight, ValueLayout.JAVA_FLOAT, 0, values.length);
        return new Linear(weight, null, out, in);
    }
}
