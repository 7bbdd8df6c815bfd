package io.bitrelay.runtime.quant;

/**
 * The low-bit part of a {@link QuantRecipe}: packed round-to-nearest weights and, unless
 * {@code activationBits} is 16, asymmetric integer activations.
 *
 * @param weightBits       3, 4 or 8: symmetric codes in ±(2^(bits−1) − 1), packed densely
 * @param groupSize        input columns sharing a weight scale; 0 = one scale per output channel
 * @param activationBits   3, 4 or 8 for integer activations; 16 = activations stay floating point (W4A16)
 * @param activationRanges where activation ranges come from; null exactly when {@code activationBits == 16}
 */
public record LowBitScheme(int weightBits, int groupSize, int activationBits, ActivationRanges activationRanges) {
    public static final int FLOAT_ACTIVATIONS = 16;

    public LowBitScheme {
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

    public boolean integerActivations() {
        return activationRanges != null;
    }

    /** RPTQ: channels reordered into clusters, fused into the weights. */
    public boolean reorders() {
        return activationRanges == ActivationRanges.PER_CLUSTER_STATIC;
    }
}
