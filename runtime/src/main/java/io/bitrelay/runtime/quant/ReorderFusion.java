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
import java.util.Map;

/**
 * RPTQ's reorder (Yuan et al., arXiv 2304.01089, §4) fused into the FP32 weights, so no activation is ever
 * moved: after it, the activations at each quantization point arrive with every channel cluster
 * contiguous, in the order of that point's {@link ClusterPlan} (position p holds channel perm[p]). The
 * function the model computes is unchanged (a sum reordered; float rounding aside).
 *
 * <ul>
 *   <li>QKV_INPUT: self_attn_layer_norm's gain and bias permuted (LayerNorm's mean and variance do not
 *   depend on the order), and q/k/v's input columns with them.</li>
 *   <li>FC1_INPUT: final_layer_norm's gain and bias, and fc1's input columns.</li>
 *   <li>FC2_INPUT: fc1's output rows and bias, and fc2's input columns; exact because ReLU is elementwise.</li>
 *   <li>OUT_PROJ_INPUT: the attention output is read through the permutation and out_proj's columns are
 *   permuted ({@link GatheredLinear}; a quantizing layer does the gather in its quantizer, which touches
 *   every element once anyway — in a fused GPU kernel it is the scatter in attention's store). The
 *   alternative, permuting v_proj's output rows, can only move a channel within its head (the heads'
 *   p·v products must keep their channels), so clusters could not be contiguous across heads: each would
 *   split into up to one piece per head, more and shorter K-blocks, and the V cache layout (another
 *   component's concern) would change. The gather keeps the global clustering, stays exact, and leaves
 *   v_proj, attention and the KV cache untouched.</li>
 * </ul>
 * Pre-LayerNorm models only: post-LN OPT (350m) has no LayerNorm in front of q/k/v and fc1 to fold into.
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
            Linear outProjected = permute(fp32(w.outProj(), layer, "out_proj"), null, outProj, arena);
            reordered[local] = new LayerWeights(
                    permute(w.selfAttnLayerNorm(), qkv, arena),
                    permute(fp32(w.qProj(), layer, "q_proj"), null, qkv, arena),
                    permute(fp32(w.kProj(), layer, "k_proj"), null, qkv, arena),
                    permute(fp32(w.vProj(), layer, "v_proj"), null, qkv, arena),
                    outProj == null ? outProjected : new GatheredLinear(outProj, outProjected),
                    permute(w.finalLayerNorm(), fc1, arena),
                    permute(fp32(w.fc1(), layer, "fc1"), fc2, fc1, arena),
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

    /** Gain and bias at position p taken from channel perm[p]. */
    private static LayerNormWeights permute(LayerNormWeights norm, int[] perm, Arena arena) {
        if (perm == null) {
            return norm;
        }
        return new LayerNormWeights(gather(norm.gain(), perm, arena), gather(norm.bias(), perm, arena), norm.width());
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
