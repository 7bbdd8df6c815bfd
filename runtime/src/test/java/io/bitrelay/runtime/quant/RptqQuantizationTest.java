package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What RPTQ is for: on a model with planted outlier channels (scaled and shifted), per-cluster asymmetric
 * ranges keep low-bit activations far more accurate than one range per tensor. The errors are measured
 * against the W4A16 model (the same packed 4-bit weights, FP32 activations), so they are the activation
 * quantization's alone: on this tiny random model 4-bit weights by themselves move the logits more than
 * any activation scheme does, and would drown the comparison.
 */
@Timeout(120)
class RptqQuantizationTest {
    @TempDir
    static Path temp;
    static Path checkpoint;
    static OptModel model;
    static CalibrationStats stats;
    static List<int[]> evaluation;
    static float[][] reference;   // W4A16: the weights every recipe below shares

    @BeforeAll
    static void calibrate() {
        checkpoint = QuantTestModels.writeTinyWithOutliers(temp.resolve("tiny-outliers"));
        model = OptModel.load(checkpoint);
        stats = Calibration.run(model, QuantTestModels.randomTokens(512, 41), 16, 32, "random", Progress.NONE);
        evaluation = List.of(QuantTestModels.randomTokens(48, 42), QuantTestModels.randomTokens(48, 43));
        try (OptModel weightOnly = RecipeApplier.apply(model, QuantRecipe.W4A16, stats, 0.5f)) {
            reference = QuantTestModels.logits(weightOnly, evaluation);
        }
    }

    @org.junit.jupiter.api.AfterAll
    static void close() {
        model.close();
    }

    @Test
    void shouldMakeRptqW4A4FarMoreAccurateThanPerTensorW4A4() {
        double perTensor = mse(QuantRecipe.W4A4_PER_TENSOR);
        double perToken = mse(QuantRecipe.W4A4_PER_TOKEN);
        double rptq = mse(QuantRecipe.W4A4_RPTQ);
        String report = String.format("logits MSE vs W4A16: w4a4 per-tensor %.3e, per-token %.3e, rptq %.3e "
                + "(per-tensor / rptq = %.1f)", perTensor, perToken, rptq, perTensor / rptq);
        System.out.println(report);
        assertTrue(perTensor >= 10 * rptq, report);
        assertTrue(perToken >= 3 * rptq, report);
        assertTrue(rptq > 0, "the activations really are quantized: " + report);
    }

    @Test
    void shouldMakeRptqW4A8MoreAccurateThanPerTensorW4A8() {
        double perTensor = mse(QuantRecipe.W4A8_PER_TENSOR);
        double rptq = mse(QuantRecipe.W4A8_RPTQ);
        String report = String.format("logits MSE vs W4A16: w4a8 per-tensor %.3e, rptq %.3e (per-tensor / rptq = %.1f)",
                perTensor, rptq, perTensor / rptq);
        System.out.println(report);
        assertTrue(perTensor >= 10 * rptq, report);
    }

    @Test
    void shouldBuildEveryLinearOfAnRptqRecipeAsALowBitLayerWithItsClusters() {
        try (OptModel quantized = RecipeApplier.apply(model, QuantRecipe.W4A3_RPTQ_G128, stats, 0.5f, 4)) {
            for (LayerWeights layer : quantized.weights().layers()) {
                for (LinearLayer linear : List.of(layer.qProj(), layer.kProj(), layer.vProj(), layer.outProj(),
                        layer.fc1(), layer.fc2())) {
                    LowBitLinear lowBit = assertInstanceOf(LowBitLinear.class, linear);
                    assertEquals(3, lowBit.activationBits());
                    assertEquals(4, lowBit.weights().bits());
                    assertTrue(lowBit.segments() >= 2, "clusters split K: " + lowBit.segments());
                }
            }
            long fp32Bytes = RecipeApplier.linearBytes(model.weights());
            long packedBytes = RecipeApplier.linearBytes(quantized.weights());
            assertTrue(packedBytes * 5 < fp32Bytes, packedBytes + " vs FP32 " + fp32Bytes);
        }
    }

    private static double mse(QuantRecipe recipe) {
        try (OptModel quantized = RecipeApplier.apply(model, recipe, stats, 0.5f, 8)) {
            return QuantTestModels.meanSquaredError(reference, QuantTestModels.logits(quantized, evaluation));
        }
    }
}
