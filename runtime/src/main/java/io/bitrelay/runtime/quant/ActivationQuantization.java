package io.bitrelay.runtime.quant;

/** How a W8A8 layer picks the INT8 scale of its input activations (symmetric in both cases). */
public enum ActivationQuantization {
    /** One scale per row (token), absmax(row)/127, computed on the fly: SmoothQuant's "O3"/per-token setting. */
    PER_TOKEN_DYNAMIC,
    /** One fixed scale for the whole tensor, calibrated absmax/127; values beyond it are clipped. */
    PER_TENSOR_STATIC
}
