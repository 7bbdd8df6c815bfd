package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Folds the mean output error of rounded weights into the bias: {@code b' = b − (Ŵ − W)·μ}, μ the layer's mean
 * calibration input (Nagel et al., "Data-Free Quantization", arXiv 1906.04721, empirical bias correction).
 *
 * <p>Why: inputs far from zero (the outlier checkpoint's shifted LayerNorm channels, 5–20 where the others stay
 * within ±3) turn each row's weight rounding error into a constant offset {@code Σ_k (Ŵ − W)_jk μ_k} on every token;
 * which constant it is depends on how a handful of weights happen to round, and that decided the perplexity
 * (docs/quantization.md, "Group-wise weights on the outlier model"). GPTQ weighs the mean in its Hessian but leaves
 * a residual; removing it exactly makes the result far less of a draw. Costs nothing at run time.
 */
final class BiasCorrection {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private BiasCorrection() {
    }

    /**
     * @param mean (in) the mean input as {@code fp32} reads it (shifted and permuted as its columns are)
     * @return {@code fp32}'s weights with the corrected bias (allocated in {@code arena}; the weights are shared)
     */
    static Linear apply(Linear fp32, PackedWeights packed, double[] mean, Arena arena) {
        int out = fp32.outFeatures();
        int in = fp32.inFeatures();
        if (mean.length != in || packed.inFeatures() != in || packed.outFeatures() != out) {
            throw new IllegalArgumentException("bias correction of a " + out + "x" + in + " layer with " + mean.length
                    + " input means and " + packed.outFeatures() + "x" + packed.inFeatures() + " packed weights");
        }
        MemorySegment rounded = arena.allocate((long) out * in * Float.BYTES, 64);
        packed.dequantize(rounded);
        MemorySegment bias = arena.allocate((long) out * Float.BYTES, 64);
        for (int j = 0; j < out; j++) {
            double shift = 0;
            long base = (long) j * in;
            for (int k = 0; k < in; k++) {
                shift += ((double) rounded.getAtIndex(F32, base + k) - fp32.weight().getAtIndex(F32, base + k)) * mean[k];
            }
            double b = fp32.bias() == null ? 0 : fp32.bias().getAtIndex(F32, j);
            bias.setAtIndex(F32, j, (float) (b - shift));
        }
        return new Linear(fp32.weight(), bias, out, in);
    }
}
