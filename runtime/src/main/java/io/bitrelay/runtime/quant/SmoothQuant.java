package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.LayerNormWeights;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptWeights;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * SmoothQuant (Xiao et al., arXiv 2211.10438, §4): per input channel j of a linear layer,
 * <pre>  s_j = max|X_j|^α / max|W_j|^(1−α)  </pre>
 * and {@code Y = (X diag(s)⁻¹)(diag(s) Wᵀ)} is the same product with the activation outliers moved into
 * the weights. The division is folded into the LayerNorm that produces X (gain and bias divided by s) and
 * the multiplication into the consumers' weight columns, so smoothing costs nothing at run time. As in the
 * paper's OPT recipe, q/k/v share one s (they read the same self_attn_layer_norm output, max|W_j| taken
 * over all three) and fc1 gets its own (final_layer_norm output); out_proj and fc2 have no LayerNorm in
 * front and are left as they are.
 */
public final class SmoothQuant {
    public static final float DEFAULT_ALPHA = 0.5f;
    /** Floor of max|X_j|, max|W_j| and s_j, as the reference implementation clamps them: no division by 0. */
    public static final float MIN_SCALE = 1e-5f;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private SmoothQuant() {
    }

    /**
     * @param weights FP32 weights with the layers smoothed; embeddings and head shared with the input
     * @param stats   the calibration with the smoothed sites' ranges divided by s (what the smoothed layers see)
     * @param qkvFactors s per layer of the stage for q/k/v, (layers, hidden)
     * @param fc1Factors s per layer of the stage for fc1, (layers, hidden)
     */
    public record Result(OptWeights weights, CalibrationStats stats, float[][] qkvFactors, float[][] fc1Factors) {
    }

    /** s_j for the input channels of {@code consumers}, all reading the same activation. */
    public static float[] factors(float[] activationAbsMax, List<Linear> consumers, float alpha) {
        if (!(alpha >= 0f && alpha <= 1f)) {
            throw new IllegalArgumentException("alpha must be in [0, 1], got " + alpha);
        }
        int width = activationAbsMax.length;
        float[] weightAbsMax = new float[width];
        for (Linear consumer : consumers) {
            if (consumer.inFeatures() != width) {
                throw new IllegalArgumentException("consumer has " + consumer.inFeatures() + " inputs, activation has " + width);
            }
            for (int row = 0; row < consumer.outFeatures(); row++) {
                long base = (long) row * width;
                for (int j = 0; j < width; j++) {
                    weightAbsMax[j] = Math.max(weightAbsMax[j], Math.abs(consumer.weight().getAtIndex(F32, base + j)));
                }
            }
        }
        float[] s = new float[width];
        for (int j = 0; j < width; j++) {
            double x = Math.max(activationAbsMax[j], MIN_SCALE);
            double w = Math.max(weightAbsMax[j], MIN_SCALE);
            s[j] = (float) Math.max(Math.pow(x, alpha) / Math.pow(w, 1.0 - alpha), MIN_SCALE);
        }
        return s;
    }

    /**
     * Smooths every decoder layer of {@code weights} (FP32, pre-LayerNorm) with factors from {@code stats};
     * the new LayerNorm and weight tensors are allocated in {@code arena} (checkpoint tensors may be mapped
     * read-only, so nothing is changed in place).
     */
    public static Result smooth(OptWeights weights, CalibrationStats stats, float alpha, Arena arena) {
        if (!weights.config().doLayerNormBefore()) {
            throw new IllegalArgumentException("SmoothQuant folds into the LayerNorm in front of q/k/v and fc1, "
                    + "which only pre-LayerNorm OPT models have");
        }
        LayerWeights[] layers = weights.layers();
        LayerWeights[] smoothed = new LayerWeights[layers.length];
        float[][] qkvFactors = new float[layers.length][];
        float[][] fc1Factors = new float[layers.length][];
        Map<CalibrationStats.Key, ChannelStats> smoothedRanges = new HashMap<>();
        for (int local = 0; local < layers.length; local++) {
            int layer = weights.range().first() + local;
            LayerWeights w = layers[local];
            Linear q = fp32(w.qProj(), layer, "q_proj");
            Linear k = fp32(w.kProj(), layer, "k_proj");
            Linear v = fp32(w.vProj(), layer, "v_proj");
            Linear fc1 = fp32(w.fc1(), layer, "fc1");

            ChannelStats attention = stats.get(layer, ActivationSite.QKV_INPUT);
            float[] s = factors(attention.absMax(), List.of(q, k, v), alpha);
            ChannelStats ffn = stats.get(layer, ActivationSite.FC1_INPUT);
            float[] t = factors(ffn.absMax(), List.of(fc1), alpha);

            smoothed[local] = new LayerWeights(
                    divide(w.selfAttnLayerNorm(), s, arena),
                    scaleColumns(q, s, arena), scaleColumns(k, s, arena), scaleColumns(v, s, arena),
                    w.outProj(),
                    divide(w.finalLayerNorm(), t, arena),
                    scaleColumns(fc1, t, arena),
                    w.fc2());
            qkvFactors[local] = s;
            fc1Factors[local] = t;
            smoothedRanges.put(new CalibrationStats.Key(layer, ActivationSite.QKV_INPUT), attention.dividedBy(s));
            smoothedRanges.put(new CalibrationStats.Key(layer, ActivationSite.FC1_INPUT), ffn.dividedBy(t));
        }
        return new Result(weights.withLayers(smoothed), stats.with(smoothedRanges), qkvFactors, fc1Factors);
    }

    private static Linear fp32(LinearLayer layer, int index, String name) {
        if (layer instanceof Linear linear) {
            return linear;
        }
        throw new IllegalArgumentException("layer " + index + " " + name + " is " + layer.getClass().getSimpleName()
                + "; SmoothQuant folds into FP32 weights, before quantization");
    }

    /** LayerNorm whose output is the original's divided by s per channel: y/s = x̂·(γ/s) + β/s. */
    private static LayerNormWeights divide(LayerNormWeights norm, float[] s, Arena arena) {
        MemorySegment gain = arena.allocate((long) norm.width() * Float.BYTES, 64);
        MemorySegment bias = arena.allocate((long) norm.width() * Float.BYTES, 64);
        for (int j = 0; j < norm.width(); j++) {
            gain.setAtIndex(F32, j, norm.gain().getAtIndex(F32, j) / s[j]);
            bias.setAtIndex(F32, j, norm.bias().getAtIndex(F32, j) / s[j]);
        }
        return new LayerNormWeights(gain, bias, norm.width());
    }

    /** W diag(s): input column j of the weight times s_j; the bias is unchanged (shared). */
    private static Linear scaleColumns(Linear linear, float[] s, Arena arena) {
        int in = linear.inFeatures();
        MemorySegment weight = arena.allocate((long) linear.outFeatures() * in * Float.BYTES, 64);
        for (int row = 0; row < linear.outFeatures(); row++) {
            long base = (long) row * in;
            for (int j = 0; j < in; j++) {
                weight.setAtIndex(F32, base + j, linear.weight().getAtIndex(F32, base + j) * s[j]);
            }
        }
        return new Linear(weight, linear.bias(), linear.outFeatures(), in);
    }
}
