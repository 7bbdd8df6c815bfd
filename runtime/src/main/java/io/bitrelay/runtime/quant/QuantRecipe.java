package io.bitrelay.runtime.quant;

import java.util.List;

/**
 * A way of building a model from FP32 weights and calibration statistics.
 *
 * @param name        what the CLI and reports call it
 * @param smoothing   apply SmoothQuant before quantizing (W8A8 recipes only)
 * @param activations how {@link W8A8Linear} layers quantize their inputs (symmetric INT8); null for FP32 and
 *                    for the low-bit recipes
 * @param lowBit      packed low-bit weights and asymmetric activations ({@link WeightOnlyLinear},
 *                    {@link LowBitLinear}); null for FP32 and W8A8
 * @param shifting    subtract each q/k/v and fc1 input channel's calibrated centre before quantizing
 *                    ({@link ChannelShift}; the "-shift" low-bit recipes)
 * @param gptq        round the low-bit weights with {@link Gptq} (error compensation weighted by the calibration
 *                    inputs' {@link Hessians}) instead of to nearest; the "-gptq" recipes, any low-bit recipe + "-gptq"
 */
public record QuantRecipe(String name, boolean smoothing, ActivationQuantization activations, LowBitScheme lowBit,
                          boolean shifting, boolean gptq) {
    public static final QuantRecipe FP32 = new QuantRecipe("fp32", false, null);
    /** Per-tensor static activations, no smoothing: what outlier channels break. */
    public static final QuantRecipe W8A8_NAIVE = new QuantRecipe("w8a8-naive", false, ActivationQuantization.PER_TENSOR_STATIC);
    public static final QuantRecipe W8A8_PER_TOKEN = new QuantRecipe("w8a8-pertoken", false, ActivationQuantization.PER_TOKEN_DYNAMIC);
    public static final QuantRecipe W8A8_SMOOTHQUANT = new QuantRecipe("w8a8-smoothquant", true, ActivationQuantization.PER_TOKEN_DYNAMIC);
    /** SmoothQuant with per-tensor static activation scales (the paper's O1–O2 style). */
    public static final QuantRecipe W8A8_SMOOTHQUANT_STATIC = new QuantRecipe("w8a8-smoothquant-static", true,
            ActivationQuantization.PER_TENSOR_STATIC);

    /** Group size of the "-g128" recipes. */
    public static final int GROUP_128 = 128;
    private static final ActivationRanges TENSOR = ActivationRanges.PER_TENSOR_STATIC;
    private static final ActivationRanges TOKEN = ActivationRanges.PER_TOKEN_DYNAMIC;
    private static final ActivationRanges CLUSTER = ActivationRanges.PER_CLUSTER_STATIC;

    public static final QuantRecipe W4A16 = lowBit("w4a16", 4, 0, LowBitScheme.FLOAT_ACTIVATIONS, null);
    public static final QuantRecipe W4A16_G128 = lowBit("w4a16-g128", 4, GROUP_128, LowBitScheme.FLOAT_ACTIVATIONS, null);
    public static final QuantRecipe W8A8_RPTQ = lowBit("w8a8-rptq", 8, 0, 8, CLUSTER);
    public static final QuantRecipe W4A8_PER_TENSOR = lowBit("w4a8-pertensor", 4, 0, 8, TENSOR);
    public static final QuantRecipe W4A8_PER_TOKEN = lowBit("w4a8-pertoken", 4, 0, 8, TOKEN);
    public static final QuantRecipe W4A8_RPTQ = lowBit("w4a8-rptq", 4, 0, 8, CLUSTER);
    public static final QuantRecipe W4A8_RPTQ_G128 = lowBit("w4a8-rptq-g128", 4, GROUP_128, 8, CLUSTER);
    public static final QuantRecipe W4A4_PER_TENSOR = lowBit("w4a4-pertensor", 4, 0, 4, TENSOR);
    public static final QuantRecipe W4A4_PER_TOKEN = lowBit("w4a4-pertoken", 4, 0, 4, TOKEN);
    public static final QuantRecipe W4A4_RPTQ = lowBit("w4a4-rptq", 4, 0, 4, CLUSTER);
    public static final QuantRecipe W4A4_RPTQ_G128 = lowBit("w4a4-rptq-g128", 4, GROUP_128, 4, CLUSTER);
    public static final QuantRecipe W4A3_RPTQ = lowBit("w4a3-rptq", 4, 0, 3, CLUSTER);
    public static final QuantRecipe W4A3_RPTQ_G128 = lowBit("w4a3-rptq-g128", 4, GROUP_128, 3, CLUSTER);
    /*
     * Channel-shifted ("-shift"): without it, on a model whose LayerNorm outputs sit at large offsets (the
     * outlier checkpoint), 4-bit rounding errors of those columns become a constant bias error that decides
     * the perplexity, and per-channel vs g128 is a coin toss (docs/quantization.md, "Group-wise weights").
     */
    public static final QuantRecipe W4A16_SHIFT = W4A16.shifted();
    public static final QuantRecipe W4A16_G128_SHIFT = W4A16_G128.shifted();
    public static final QuantRecipe W4A8_RPTQ_SHIFT = W4A8_RPTQ.shifted();
    public static final QuantRecipe W4A8_RPTQ_G128_SHIFT = W4A8_RPTQ_G128.shifted();
    public static final QuantRecipe W4A4_RPTQ_SHIFT = W4A4_RPTQ.shifted();
    public static final QuantRecipe W4A4_RPTQ_G128_SHIFT = W4A4_RPTQ_G128.shifted();

    public static final QuantRecipe W4A16_GPTQ = W4A16.withGptq();
    public static final QuantRecipe W4A16_G128_GPTQ = W4A16_G128.withGptq();
    public static final QuantRecipe W4A16_SHIFT_GPTQ = W4A16_SHIFT.withGptq();
    public static final QuantRecipe W4A8_RPTQ_GPTQ = W4A8_RPTQ.withGptq();
    public static final QuantRecipe W4A4_RPTQ_GPTQ = W4A4_RPTQ.withGptq();
    public static final QuantRecipe W4A3_RPTQ_GPTQ = W4A3_RPTQ.withGptq();

    public static final List<QuantRecipe> ALL = List.of(FP32, W8A8_NAIVE, W8A8_PER_TOKEN, W8A8_SMOOTHQUANT,
            W8A8_SMOOTHQUANT_STATIC, W4A16, W4A16_G128, W8A8_RPTQ, W4A8_PER_TENSOR, W4A8_PER_TOKEN, W4A8_RPTQ,
            W4A8_RPTQ_G128, W4A4_PER_TENSOR, W4A4_PER_TOKEN, W4A4_RPTQ, W4A4_RPTQ_G128, W4A3_RPTQ, W4A3_RPTQ_G128,
            W4A16_SHIFT, W4A16_G128_SHIFT, W4A8_RPTQ_SHIFT, W4A8_RPTQ_G128_SHIFT, W4A4_RPTQ_SHIFT, W4A4_RPTQ_G128_SHIFT,
            W4A16_GPTQ, W4A16_G128_GPTQ, W4A16_SHIFT_GPTQ, W4A8_RPTQ_GPTQ, W4A4_RPTQ_GPTQ, W4A3_RPTQ_GPTQ);

    public QuantRecipe {
        if (activations != null && lowBit != null) {
            throw new IllegalArgumentException("recipe " + name + ": W8A8 activations and a low-bit scheme exclude each other");
        }
        if (smoothing && activations == null) {
            throw new IllegalArgumentException("recipe " + name + ": SmoothQuant is only wired to the W8A8 recipes");
        }
        if (shifting && lowBit == null) {
            throw new IllegalArgumentException("recipe " + name + ": channel shifting is only wired to the low-bit recipes");
        }
        if (gptq && lowBit == null) {
            throw new IllegalArgumentException("recipe " + name + ": GPTQ rounds low-bit weights; W8A8 rounds to nearest");
        }
        if (lowBit != null && lowBit.biasCorrection() && !gptq) {
            throw new IllegalArgumentException("recipe " + name + ": bias correction needs the calibration inputs' moments, "
                    + "which only the -gptq recipes collect");
        }
    }

    /** A W8A8 recipe (or FP32 when {@code activations} is null). */
    public QuantRecipe(String name, boolean smoothing, ActivationQuantization activations) {
        this(name, smoothing, activations, null, false, false);
    }

    /** This low-bit recipe with {@link ChannelShift} before quantizing, named {@code <name>-shift}. */
    public QuantRecipe shifted() {
        return new QuantRecipe(name + "-shift", smoothing, activations, lowBit, true, gptq);
    }

    /** This low-bit recipe with its weights rounded by {@link Gptq}, named {@code <name>-gptq}. */
    public QuantRecipe withGptq() {
        return new QuantRecipe(name + "-gptq", smoothing, activations, lowBit, shifting, true);
    }

    /**
     * This recipe with its 3/4-bit weights on (a)symmetric grids ({@link LowBitScheme#asymmetricWeights()}), same
     * name; recipes without such weights (FP32, W8A8, 8-bit weights) come back unchanged.
     */
    public QuantRecipe withAsymmetricWeights(boolean asymmetric) {
        if (lowBit == null || lowBit.weightBits() == 8 || lowBit.asymmetricWeights() == asymmetric) {
            return this;
        }
        return new QuantRecipe(name, smoothing, activations, lowBit.withAsymmetricWeights(asymmetric), shifting, gptq);
    }

    /**
     * This GPTQ recipe with or without {@link BiasCorrection} of its rounded weights, same name; other recipes (no
     * calibration inputs to take the mean of) come back unchanged.
     */
    public QuantRecipe withBiasCorrection(boolean correct) {
        if (!gptq || lowBit.biasCorrection() == correct) {
            return this;
        }
        return new QuantRecipe(name, smoothing, activations, lowBit.withBiasCorrection(correct), shifting, gptq);
    }

    private static QuantRecipe lowBit(String name, int weightBits, int groupSize, int activationBits,
                                      ActivationRanges ranges) {
        return new QuantRecipe(name, false, null, new LowBitScheme(weightBits, groupSize, activationBits, ranges), false,
                false);
    }

    public static QuantRecipe byName(String name) {
        for (QuantRecipe recipe : ALL) {
            if (recipe.name.equals(name)) {
                return recipe;
            }
        }
        String gptqSuffix = "-gptq";
        if (name.endsWith(gptqSuffix) && name.length() > gptqSuffix.length()) {
            QuantRecipe rounded = byName(name.substring(0, name.length() - gptqSuffix.length()));
            if (rounded.lowBit() != null && !rounded.gptq()) {
                return rounded.withGptq();
            }
        }
        throw new IllegalArgumentException("unknown recipe '" + name + "' (known: "
                + String.join(", ", ALL.stream().map(QuantRecipe::name).toList()) + ")");
    }

    public boolean quantizes() {
        return activations != null || lowBit != null;
    }

    /** RPTQ recipes: the plan carries a channel clustering per activation site, fused into the weights. */
    public boolean reorders() {
        return lowBit != null && lowBit.reorders();
    }

    /**
     * Smoothing factors, channel centres, static scales and clusters come from calibration; per-token dynamic
     * alone needs none.
     */
    public boolean needsCalibration() {
        if (shifting || gptq) {
            return true;
        }
        if (lowBit != null) {
            return lowBit.integerActivations() && lowBit.activationRanges().isStatic();
        }
        return smoothing || activations == ActivationQuantization.PER_TENSOR_STATIC;
    }
}
