package io.bitrelay.runtime.quant;

import java.util.List;

/**
 * A way of building a model from FP32 weights and calibration statistics.
 *
 * @param name        what the CLI and reports call it
 * @param smoothing   apply SmoothQuant before quantizing
 * @param activations how W8A8 layers quantize their inputs; null = no quantization (FP32 baseline)
 */
public record QuantRecipe(String name, boolean smoothing, ActivationQuantization activations) {
    public static final QuantRecipe FP32 = new QuantRecipe("fp32", false, null);
    /** Per-tensor static activations, no smoothing: what outlier channels break. */
    public static final QuantRecipe W8A8_NAIVE = new QuantRecipe("w8a8-naive", false, ActivationQuantization.PER_TENSOR_STATIC);
    public static final QuantRecipe W8A8_PER_TOKEN = new QuantRecipe("w8a8-pertoken", false, ActivationQuantization.PER_TOKEN_DYNAMIC);
    public static final QuantRecipe W8A8_SMOOTHQUANT = new QuantRecipe("w8a8-smoothquant", true, ActivationQuantization.PER_TOKEN_DYNAMIC);
    /** SmoothQuant with per-tensor static activation scales (the paper's O1–O2 style). */
    public static final QuantRecipe W8A8_SMOOTHQUANT_STATIC = new QuantRecipe("w8a8-smoothquant-static", true,
            ActivationQuantization.PER_TENSOR_STATIC);

    public static final List<QuantRecipe> ALL = List.of(FP32, W8A8_NAIVE, W8A8_PER_TOKEN, W8A8_SMOOTHQUANT,
            W8A8_SMOOTHQUANT_STATIC);

    public static QuantRecipe byName(String name) {
        for (QuantRecipe recipe : ALL) {
            if (recipe.name.equals(name)) {
                return recipe;
            }
        }
        throw new IllegalArgumentException("unknown recipe '" + name + "' (known: "
                + String.join(", ", ALL.stream().map(QuantRecipe::name).toList()) + ")");
    }

    public boolean quantizes() {
        return activations != null;
    }

    /** Smoothing factors and static scales come from calibration; per-token dynamic W8A8 alone needs none. */
    public boolean needsCalibration() {
        return smoothing || activations == ActivationQuantization.PER_TENSOR_STATIC;
    }
}
