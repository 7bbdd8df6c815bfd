package io.bitrelay.runtime.quant;

/**
 * Where a low-bit layer ({@link LowBitLinear}) takes the asymmetric range {@code [min, max]} of its input
 * activations from. Every variant maps its range onto the full code range with a scale and an integer zero
 * point, {@code x ≈ s·(q − z)}; they differ only in how many values share one range.
 */
public enum ActivationRanges {
    /** One calibrated range for the whole tensor; values outside it are clipped. */
    PER_TENSOR_STATIC,
    /** Each row (token) on its own min/max, measured at every call: nothing is clipped. */
    PER_TOKEN_DYNAMIC,
    /**
     * RPTQ: one calibrated range per channel cluster (the union of its channels' ranges); the channels
     * of a cluster are contiguous after the reorder fused into the weights, so each cluster is one K-block.
     */
    PER_CLUSTER_STATIC;

    /** Whether the ranges come from calibration (and so the recipe needs statistics). */
    public boolean isStatic() {
        return this != PER_TOKEN_DYNAMIC;
    }
}
