package io.bitrelay.runtime.quant;

/**
 * The choices beyond a recipe's name that change what it builds (issue 19): how calibration estimates the static
 * activation ranges, the grid of the 3/4-bit weights, and GPTQ bias correction. {@code bitrelay eval} takes them as
 * {@code --act-ranges}, {@code --weights}, {@code --bias-correction}; a cluster from {@code bitrelay.quantization.*};
 * the quantization store records them ({@link #effectiveFor}) so that a stage built under other choices is not reused.
 *
 * @param activationRanges  how calibration turns the activations it sees into each channel's [min, max]
 * @param asymmetricWeights 3/4-bit weights on grids with a zero point ({@link LowBitScheme#asymmetricWeights()})
 * @param biasCorrection    GPTQ recipes fold the rounded weights' mean output error into the bias ({@link BiasCorrection})
 */
public record RecipeOptions(RangeEstimator activationRanges, boolean asymmetricWeights, boolean biasCorrection) {
    /** What {@code bitrelay eval} and a cluster use unless told otherwise (measured in docs/quantization.md, issue 19). */
    public static final RecipeOptions DEFAULT = new RecipeOptions(RangeEstimator.BATCH_MEAN, true, false);
    /**
     * What every recipe was built with before the choices existed: extremes, symmetric weights, no bias correction. A
     * store file that does not record the choices was made with these, so it is compared as such: reused by a start
     * that asks for them, rebuilt by one that asks for others, never misread.
     */
    public static final RecipeOptions LEGACY = new RecipeOptions(RangeEstimator.MIN_MAX, false, false);

    public static final String ASYMMETRIC = "asymmetric";
    public static final String SYMMETRIC = "symmetric";

    public RecipeOptions {
        if (activationRanges == null) {
            throw new IllegalArgumentException("activationRanges is required");
        }
    }

    /** {@code recipe} with these weights and bias correction (where it has such weights; see {@link QuantRecipe}). */
    public QuantRecipe applyTo(QuantRecipe recipe) {
        return recipe.withAsymmetricWeights(asymmetricWeights).withBiasCorrection(biasCorrection);
    }

    /**
     * The choices that change what {@code recipe} builds, the others as {@link #LEGACY}: the store's identity. W8A8
     * recipes use absMax only (SmoothQuant, symmetric scales) and have no 3/4-bit weights, so a W8A8 store made before
     * the choices existed stays reusable whatever they are set to now; the activation ranges count where static low-bit
     * activations or "-shift" centres are made from them.
     */
    public RecipeOptions effectiveFor(QuantRecipe recipe) {
        QuantRecipe built = applyTo(recipe);
        LowBitScheme lowBit = built.lowBit();
        boolean rangesCount = lowBit != null
                && (built.shifting() || (lowBit.integerActivations() && lowBit.activationRanges().isStatic()));
        return new RecipeOptions(rangesCount ? activationRanges : LEGACY.activationRanges,
                lowBit != null && lowBit.asymmetricWeights(), lowBit != null && lowBit.biasCorrection());
    }

    public String weightsKey() {
        return asymmetricWeights ? ASYMMETRIC : SYMMETRIC;
    }

    /** For logs: "batch-mean activation ranges, asymmetric weights, bias correction off". */
    public String describe() {
        return activationRanges.key() + " activation ranges, " + weightsKey() + " weights, bias correction "
                + (biasCorrection ? "on" : "off");
    }

    /**
     * @param option what the value was given as (a CLI option or configuration key), named in the error
     * @return true for asymmetric
     */
    public static boolean parseWeights(String value, String option) {
        return switch (value) {
            case ASYMMETRIC -> true;
            case SYMMETRIC -> false;
            default -> throw new IllegalArgumentException(option + ": '" + value + "' is not " + ASYMMETRIC + " or " + SYMMETRIC);
        };
    }
}
