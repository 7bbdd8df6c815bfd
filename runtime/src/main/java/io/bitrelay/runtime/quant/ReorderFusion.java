package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptWeights;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;

/**
 * RPTQ's reorder (Yuan et al., arXiv 2304.01089, §4) fused into the FP32 weights: after it, the activations
 * each linear quantizes arrive with every channel cluster contiguous, in the order of that site's
 * {@link ClusterPlan} (position p holds channel perm[p]). The function the model computes is unchanged
 * (a sum reordered; float rounding aside).
 *
 * <ul>
 *   <li>FC2_INPUT: fc1's output rows and bias are permuted, and fc2's input columns: fully folded into the
 *   weights, no data moves. Exact because ReLU is elementwise.</li>
 *   <li>QKV_INPUT, FC1_INPUT: the consumers' input columns are permuted and the consumer reads the
 *   LayerNorm output through the permutation ({@link GatheredLinear}; a quantizing layer does the gather in
 *   its quantizer, {@link LowBitLinear}, which reads every element once anyway). Permuting the LayerNorm's
 *   gain and bias alone would not be exact: the normalized value x̂_c comes from the residual stream, whose
 *   channel order is fixed (it is shared with every other layer and the inter-stage links), so position p
 *   would get x̂_p·γ_perm[p] instead of x̂_perm[p]·γ_perm[p]. RPTQ's "fused into the LayerNorm" is the
 *   LayerNorm kernel storing through the permutation; the gather in the consumer is the same thing one
 *   kernel later, and leaves the LayerNorm weights and kernel untouched.</li>
 *   <li>OUT_PROJ_INPUT: likewise, out_proj's columns are permuted and the attention output read through the
 *   permutation (in a fused GPU kernel: the scatter in attention's store). The alternative, permuting
 *   v_proj's output rows, can only move a channel within its head (each head's p·v keeps its channels), so
 *   clusters could not be contiguous across heads: each would split into up to one K-block per head, and
 *   the V cache layout (another component's concern) would change. The gather keeps the global clustering,
 *   is exact, and leaves v_proj, attention and the KV cache as they are.</li>
 * </ul>
 * Pre-LayerNorm models only, as SmoothQuant: post-LN OPT (350m) feeds q/k/v and fc1 a different tensor.
 */
public final class ReorderFusion {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private ReorderFusion() {
    }

    /**
     * @param reorders plans by (global layer, site); a site without a plan keeps its channel order
     * @return the same stage with permuted tensors allocated in {@code arena} (the originals are not written)
     */
    public static OptWeights apply(OptWeights weights, Map<CalibrationStats.Key, ClusterPlan> reorders, Arena arena) {
        if (!weights.config().doLayerNormBefore()) {
            throw new IllegalArgumentException("the RPTQ reorder folds into the LayerNorms in front of q/k/v and fc1, "
                    + "which only pre-LayerNorm OPT models have (this model is post-LN)");
        }
        LayerWeights[] layers = weights.layers();
        LayerWeights[] reordered = new LayerWeights[layers.length];
        for (int local = 0; local < layers.length; local++) {
            int layer = weights.range().first() + local;
            LayerWeights w = layers[local];
            int[] qkv = permutation(reorders, layer, ActivationSite.QKV_INPUT, w.qProj().inFeatures());
            int[] outProj = permutation(reorders, layer, ActivationSite.OUT_PROJ_INPUT, w.outProj().inFeatures());
            int[] fc1 = permutation(reorders, layer, ActivationSite.FC1_INPUT, w.fc1().inFeatures());
            int[] fc2 = permutation(reorders, layer, ActivationSite.FC2_INPUT, w.fc2().inFeatures());
            reordered[local] = new LayerWeights(
                    w.selfAttnLayerNorm(),
                    gathered(fp32(w.qProj(), layer, "q_proj"), null, qkv, arena),
                    gathered(fp32(w.kProj(), layer, "k_proj"), null, qkv, arena),
                    gathered(fp32(w.vProj(), layer, "v_proj"), null, qkv, arena),
                    gathered(fp32(w.outProj(), layer, "out_proj"), null, outProj, arena),
                    w.finalLayerNorm(),
                    gathered(fp32(w.fc1(), layer, "fc1"), fc2, fc1, arena),
                    permute(fp32(w.fc2(), layer, "fc2"), null, fc2, arena));
        }
        return weights.withLayers(reordered);
    }

    private static int[] permutation(Map<CalibrationStats.Key, ClusterPlan> reorders, int layer, ActivationSite site,
                                     int width) {
        ClusterPlan plan = reorders.get(new CalibrationStats.Key(layer, site));
        if (plan == null) {
            return null;
        }
        if (plan.width() != width) {
            throw new IllegalArgumentException("layer " + layer + " " + site.key() + ": cluster plan of width "
                    + plan.width() + " for activations of width " + width);
        }
        return plan.permutation();
    }

    private static Linear fp32(LinearLayer layer, int index, String name) {
        if (layer instanceof Linear linear) {
            return linear;
        }
        throw new IllegalArgumentException("layer " + index + " " + name + " is " + layer.getClass().getSimpleName()
                + "; the reorder is fused into FP32 weights, before quantization");
    }

    /** The layer with permuted rows and columns, reading its input through {@code columns} (when not null). */
    private static LinearLayer gathered(Linear linear, int[] rows, int[] columns, Arena arena) {
        Linear permuted = permute(linear, rows, columns, arena);
        return columns == null ? permuted : new GatheredLinear(columns, permuted);
    }

    /** W'[r, c] = W[rows[r], columns[c]], b'[r] = b[rows[r]]; null = that axis unchanged. */
    static Linear permute(Linear linear, int[] rows, int[] columns, Arena arena) {
        if (rows == null && columns == null) {
            return linear;
        }
        int out = linear.outFeatures();
        int in = linear.inFeatures();
        MemorySegment weight = arena.allocate((long) out * in * Float.BYTES, 64);
        MemorySegment source = linear.weight();
        for (int r = 0; r < out; r++) {
            long from = (long) (rows == null ? r : rows[r]) * in;
            long to = (long) r * in;
            if (columns == null) {
                MemorySegment.copy(source, from * Float.BYTES, weight, to * Float.BYTES, (long) in * Float.BYTES);
            } else {
                for (int c = 0; c < in; c++) {
                    weight.setAtIndex(F32, to + c, source.getAtIndex(F32, from + columns[c]));
                }
            }
        }
        MemorySegment bias = linear.bias() == null || rows == null ? linear.bias() : gather(linear.bias(), rows, arena);
        return new Linear(weight, bias, out, in);
    }

    private static MemorySegment gather(MemorySegment values, int[] perm, Arena arena) {
        MemorySegment out = arena.allocate((long) perm.length * Float.BYTES, 64);
        for (int p = 0; p < perm.length; p++) {
            out.setAtIndex(F32, p, values.getAtIndex(F32, perm[p]));
        }
        return out;
    }
}
