package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.node.BitrelayConfig;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RangeEstimator;
import io.bitrelay.runtime.quant.RecipeOptions;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class QuantizationSettingsTest {

    static QuantizationSettings settings(Map<String, ?> overrides) {
        return QuantizationSettings.from(BitrelayConfig.load(overrides, null));
    }

    /** Issue 19: the cluster calibrates and rounds as `bitrelay eval` does by default. */
    @Test
    void shouldDefaultToEvalsRecipeOptionsAndBuildAsymmetricWeights() {
        QuantizationSettings defaults = settings(Map.of("bitrelay.quantization.recipe", "w4a4-rptq-gptq"));
        assertEquals(RecipeOptions.DEFAULT, defaults.options());
        assertEquals(new RecipeOptions(RangeEstimator.BATCH_MEAN, true, false), defaults.options());
        assertEquals("w4a4-rptq-gptq", defaults.recipe().name());
        assertTrue(defaults.recipe().lowBit().asymmetricWeights(), "the plan's recipe rounds onto asymmetric grids");
        assertFalse(defaults.recipe().lowBit().biasCorrection());
    }

    @Test
    void shouldTakeEachOptionFromItsKey() {
        QuantizationSettings chosen = settings(Map.of("bitrelay.quantization.recipe", "w4a4-rptq-gptq",
                "bitrelay.quantization.activation-ranges", "min-max", "bitrelay.quantization.weights", "symmetric",
                "bitrelay.quantization.bias-correction", "on"));
        assertEquals(new RecipeOptions(RangeEstimator.MIN_MAX, false, true), chosen.options());
        assertEquals(QuantRecipe.W4A4_RPTQ_GPTQ.withBiasCorrection(true), chosen.recipe());
        assertEquals(QuantRecipe.W8A8_SMOOTHQUANT, settings(Map.of("bitrelay.quantization.recipe", "w8a8-smoothquant")).recipe(),
                "W8A8 has no 3/4-bit weights to put on another grid");
    }

    @Test
    void shouldRefuseABadOptionNamingItsKey() {
        assertRefused("activation-ranges", "p99", "bitrelay.quantization.activation-ranges: 'p99' is not one of [min-max, batch-mean]");
        assertRefused("weights", "skewed", "bitrelay.quantization.weights: 'skewed' is not asymmetric or symmetric");
        assertRefused("bias-correction", "sometimes", "bitrelay.quantization.bias-correction: 'sometimes' is not on or off");
    }

    private static void assertRefused(String key, String value, String message) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> settings(Map.of("bitrelay.quantization." + key, value)));
        assertEquals(message, e.getMessage());
    }
}
