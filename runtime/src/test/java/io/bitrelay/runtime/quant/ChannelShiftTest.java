package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.OptModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Channel shifting keeps the FP32 function and takes the shifted channels' offset out of the weight error. */
@Timeout(60)
class ChannelShiftTest {
    @TempDir
    static Path temp;
    static Path checkpoint;

    @BeforeAll
    static void writeModel() {
        checkpoint = QuantTestModels.writeTinyWithOutliers(temp.resolve("tiny-outliers"));
    }

    private static CalibrationStats calibrate(OptModel model) {
        return Calibration.run(model, QuantTestModels.randomTokens(256, 41), 8, 32, "random", Progress.NONE);
    }

    @Test
    void shouldKeepTheModelOutputInFp32() {
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationStats stats = calibrate(model);
            List<int[]> evaluation = List.of(QuantTestModels.randomTokens(40, 42), QuantTestModels.randomTokens(33, 43));
            float[][] reference = QuantTestModels.logits(model, evaluation);
            Arena arena = Arena.ofShared();
            try (OptModel shifted = model.derive(ChannelShift.shift(model.weights(), stats, arena).weights(), arena)) {
                double maxDiff = QuantTestModels.maxAbsDifference(reference, QuantTestModels.logits(shifted, evaluation));
                assertTrue(maxDiff < 1e-4, "max |Δlogit| " + maxDiff);
            }
        }
    }

    @Test
    void shouldCentreTheLinearInputsAndLeaveTheOtherSites() {
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationStats stats = calibrate(model);
            CalibrationStats shifted = ChannelShift.shiftedStats(stats);
            float largestCentre = 0;
            for (var entry : stats.entries().entrySet()) {
                ChannelStats after = shifted.entries().get(entry.getKey());
                ActivationSite site = entry.getKey().site();
                if (site != ActivationSite.QKV_INPUT && site != ActivationSite.FC1_INPUT) {
                    assertSame(entry.getValue(), after, entry.getKey().toString());
                    continue;
                }
                float[] centres = ChannelShift.centres(entry.getValue());
                for (int j = 0; j < after.width(); j++) {
                    largestCentre = Math.max(largestCentre, Math.abs(centres[j]));
                    assertEquals(-after.min()[j], after.max()[j], 1e-5f * after.absMax()[j], entry.getKey() + " channel " + j);
                    assertEquals(after.max()[j], after.absMax()[j], 1e-5f * after.absMax()[j], entry.getKey() + " channel " + j);
                }
            }
            assertTrue(largestCentre > 2, "the planted shifts are there to be removed: largest centre " + largestCentre);
        }
    }

    @Test
    void shouldCutTheWeightOnlyErrorOnShiftedChannels() {
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationStats stats = calibrate(model);
            List<int[]> evaluation = List.of(QuantTestModels.randomTokens(48, 44), QuantTestModels.randomTokens(48, 45));
            float[][] reference = QuantTestModels.logits(model, evaluation);
            for (QuantRecipe plain : List.of(QuantRecipe.W4A16, QuantRecipe.W4A16_G128, QuantRecipe.W4A8_RPTQ_G128)) {
                QuantRecipe shiftedRecipe = QuantRecipe.byName(plain.name() + "-shift");
                double before;
                double after;
                try (OptModel q = RecipeApplier.apply(model, plain, stats, 0.5f, 4)) {
                    before = QuantTestModels.meanSquaredError(reference, QuantTestModels.logits(q, evaluation));
                }
                try (OptModel q = RecipeApplier.apply(model, shiftedRecipe, stats, 0.5f, 4)) {
                    after = QuantTestModels.meanSquaredError(reference, QuantTestModels.logits(q, evaluation));
                }
                System.out.printf("%s logit MSE %.5f, %s %.5f%n", plain.name(), before, shiftedRecipe.name(), after);
                assertTrue(after < before / 2, plain.name() + ": " + before + " → shifted " + after);
            }
        }
    }

    @Test
    void shouldOnlyShiftLowBitRecipes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new QuantRecipe("w8a8-shift", false, ActivationQuantization.PER_TOKEN_DYNAMIC, null, true, false));
        assertTrue(e.getMessage().contains("low-bit"), e.getMessage());
        assertTrue(QuantRecipe.W4A16_G128_SHIFT.shifting() && QuantRecipe.W4A16_G128_SHIFT.needsCalibration());
    }
}
