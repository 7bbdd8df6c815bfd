package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.OptModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the recipes are for: on a model with LLM-like outlier channels, smoothing wins back what naive W8A8 loses. */
@Timeout(120)
class OutlierQuantizationTest {
    @TempDir
    static Path temp;
    static Path checkpoint;

    @BeforeAll
    static void writeModel() {
        checkpoint = QuantTestModels.writeTinyWithOutliers(temp.resolve("tiny-outliers"));
    }

    @Test
    void shouldMakeSmoothQuantW8A8FarMoreAccurateThanNaivePerTensorW8A8() {
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationStats stats = Calibration.run(model, QuantTestModels.randomTokens(512, 21), 16, 32, "random",
                    Progress.NONE);
            List<int[]> evaluation = List.of(QuantTestModels.randomTokens(48, 22), QuantTestModels.randomTokens(48, 23));
            float[][] reference = QuantTestModels.logits(model, evaluation);

            double naive = mse(model, QuantRecipe.W8A8_NAIVE, stats, evaluation, reference);
            double perToken = mse(model, QuantRecipe.W8A8_PER_TOKEN, stats, evaluation, reference);
            double smooth = mse(model, QuantRecipe.W8A8_SMOOTHQUANT, stats, evaluation, reference);
            double smoothStatic = mse(model, QuantRecipe.W8A8_SMOOTHQUANT_STATIC, stats, evaluation, reference);
            String report = String.format("logits MSE vs FP32: naive %.3e, per-token %.3e, smoothquant %.3e, "
                    + "smoothquant-static %.3e", naive, perToken, smooth, smoothStatic);
            System.out.println(report);
            assertTrue(naive >= 3 * smooth, report);
            assertTrue(naive >= 3 * smoothStatic, report);
            assertTrue(smooth > 0, "the W8A8 model really is quantized");
        }
    }

    @Test
    void shouldReplaceEveryDecoderLinearAndKeepFp32ForTheBaseline() {
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationStats stats = Calibration.run(model, QuantTestModels.randomTokens(128, 24), 4, 32, "random",
                    Progress.NONE);
            try (OptModel fp32 = RecipeApplier.apply(model, QuantRecipe.FP32, null, 0.5f);
                 OptModel naive = RecipeApplier.apply(model, QuantRecipe.W8A8_NAIVE, stats, 0.5f)) {
                assertSame(model.weights().layers()[0].fc1(), fp32.weights().layers()[0].fc1());
                for (LayerWeights layer : naive.weights().layers()) {
                    for (var linear : List.of(layer.qProj(), layer.kProj(), layer.vProj(), layer.outProj(), layer.fc1(), layer.fc2())) {
                        W8A8Linear quantized = assertInstanceOf(W8A8Linear.class, linear);
                        assertEquals(ActivationQuantization.PER_TENSOR_STATIC, quantized.activations());
                    }
                }
                assertSame(model.weights().tokenEmbeddings(), naive.weights().tokenEmbeddings(), "the LM head stays FP32");
            }
        }
    }

    private static double mse(OptModel model, QuantRecipe recipe, CalibrationStats stats, List<int[]> evaluation,
                              float[][] reference) {
        try (OptModel quantized = RecipeApplier.apply(model, recipe, stats, SmoothQuant.DEFAULT_ALPHA)) {
            return QuantTestModels.meanSquaredError(reference, QuantTestModels.logits(quantized, evaluation));
        }
    }
}
