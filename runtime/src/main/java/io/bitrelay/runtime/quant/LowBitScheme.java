package io.bitrelay.runtime.quant;

/**
 * The low-bit part of a {@link QuantRecipe}: packed weights and, unless {@code activationBits} is 16, asymmetric
 * integer activations.
 *
 * @param weightBits       3, 4 or 8, packed densely
 * @param groupSize        input columns sharing a weight scale; 0 = one scale per output channel
 * @param activationBits   3, 4 or 8 for integer activations; 16 = activations stay floating point (W4A16)
 * @param activationRanges where activation ranges come from; null exactly when {@code activationBits == 16}
 * @param asymmetricWeights weights on grids with a zero point per channel or group ({@link WeightGrid}: all 2^bits
 *                         levels); 3- and 4-bit weights only. Otherwise symmetric, ±(2^(bits−1) − 1)
 * @param biasCorrection   fold the rounded weights' mean output error into the bias ({@link BiasCorrection}); needs
 *                         the calibration inputs' moments, so GPTQ recipes only
 */
public record LowBitScheme(int weightBits, int groupSize, int activationBits, ActivationRanges activationRanges,
                           boolean asymmetricWeights, boolean biasCorrection) {
    public static final int FLOAT_ACTIVATIONS = 16;

    /** Symmetric weights, no bias correction. */
    public LowBitScheme(int weightBits, int groupSize, int activationBits, ActivationRanges activationRanges) {
        this(weightBits, groupSize, activationBits, activationRanges, false, false);
    }

    /** No bias correction. */
    public LowBitScheme(int weightBits, int groupSize, int activationBits, ActivationRanges activationRanges,
                        boolean asymmetricWeights) {
        this(weightBits, groupSize, activationBits, activationRanges, asymmetricWeights, false);
    }

    public LowBitScheme {
        if (asymmetricWeights && weightBits == 8) {
            throw new IllegalArgumentException("asymmetric weights have 3 or 4 bits (8-bit codes minus a zero point "
                    + "leave a signed byte), got 8");
        }
        if (weightBits != 3 && weightBits != 4 && weightBits != 8) {
            throw new IllegalArgumentException("weightBits must be 3, 4 or 8, got " + weightBits);
        }
        if (groupSize < 0) {
            throw new IllegalArgumentException("groupSize must be >= 0 (0 = per output channel), got " + groupSize);
        }
        boolean floatActivations = activationBits == FLOAT_ACTIVATIONS;
        if (!floatActivations && activationBits != 3 && activationBits != 4 && activationBits != 8) {
            throw new IllegalArgumentException("activationBits must be 3, 4, 8 or 16, got " + activationBits);
        }
        if (floatActivations != (activationRanges == null)) {
            throw new IllegalArgumentException("activation ranges are needed exactly when activations are integer");
        }
    }

    /** This scheme with (a)symmetric weights. */
    public LowBitScheme withAsymmetricWeights(boolean asymmetric) {
        return new LowBitScheme(weightBits, groupSize, activationBits, activationRanges, asymmetric, biasCorrection);
    }

    /** This scheme with or without {@link BiasCorrection}. */
    public LowBitScheme withBiasCorrection(boolean correct) {
        return new LowBitScheme(weightBits, groupSize, activationBits, activationRanges, asymmetricWeights, correct);
    }

    public boolean integerActivations() {
        return activationRanges != null;
    }

    /** RPTQ: channels reordered into clusters, fused into the weights. */
    public boolean reorders() {
        return activationRanges == ActivationRanges.PER_CLUSTER_STATIC;
    }
}
