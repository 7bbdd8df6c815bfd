package io.bitrelay.runtime.quant;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RecipeOptionsTest {
    private static final RecipeOptions ALL_CHANGED = new RecipeOptions(RangeEstimator.BATCH_MEAN, true, true);

    @Test
    void shouldApplyWeightsAndBiasCorrectionWhereTheRecipeHasThem() {
        QuantRecipe rptq = ALL_CHANGED.applyTo(QuantRecipe.W4A4_RPTQ_GPTQ);
        assertEquals("w4a4-rptq-gptq", rptq.name());
        assertTrue(rptq.lowBit().asymmetricWeights());
        assertTrue(rptq.lowBit().biasCorrection());
        assertFalse(ALL_CHANGED.applyTo(QuantRecipe.W4A8_RPTQ).lowBit().biasCorrection(), "no moments without GPTQ");
        assertEquals(QuantRecipe.W8A8_SMOOTHQUANT, ALL_CHANGED.applyTo(QuantRecipe.W8A8_SMOOTHQUANT));
        assertEquals(QuantRecipe.W8A8_RPTQ, ALL_CHANGED.applyTo(QuantRecipe.W8A8_RPTQ), "8-bit weights stay symmetric");
    }

    /** What the store compares: a choice the recipe ignores reads as before the choices existed, so old stores stay valid. */
    @Test
    void shouldKeepOnlyTheChoicesARecipeUsesForTheStore() {
        assertEquals(ALL_CHANGED, ALL_CHANGED.effectiveFor(QuantRecipe.W4A4_RPTQ_GPTQ));
        assertEquals(RecipeOptions.LEGACY, ALL_CHANGED.effectiveFor(QuantRecipe.W8A8_SMOOTHQUANT));
        assertEquals(RecipeOptions.LEGACY, ALL_CHANGED.effectiveFor(QuantRecipe.FP32));
        assertEquals(new RecipeOptions(RangeEstimator.MIN_MAX, true, true), ALL_CHANGED.effectiveFor(QuantRecipe.W4A16_GPTQ),
                "W4A16 has no activation ranges");
        assertEquals(new RecipeOptions(RangeEstimator.BATCH_MEAN, true, false), ALL_CHANGED.effectiveFor(QuantRecipe.W4A16_SHIFT),
                "-shift centres come from the ranges");
        assertEquals(new RecipeOptions(RangeEstimator.BATCH_MEAN, false, false), ALL_CHANGED.effectiveFor(QuantRecipe.W8A8_RPTQ));
    }

    @Test
    void shouldNameTheOptionOfABadWeightsValue() {
        assertTrue(RecipeOptions.parseWeights("asymmetric", "k"));
        assertFalse(RecipeOptions.parseWeights("symmetric", "k"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RecipeOptions.parseWeights("skewed", "bitrelay.quantization.weights"));
        assertEquals("bitrelay.quantization.weights: 'skewed' is not asymmetric or symmetric", e.getMessage());
    }
}
