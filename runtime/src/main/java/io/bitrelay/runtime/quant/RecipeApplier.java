package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.OptWeights;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.Map;

/**
 * Builds the model a {@link QuantRecipe} describes from an FP32 model and its calibration statistics.
 * W8A8 recipes: optionally SmoothQuant-folded, then every decoder linear (q, k, v, out_proj, fc1, fc2)
 * replaced by a {@link W8A8Linear}. Low-bit recipes: optionally channel-shifted ({@link ChannelShift}); for RPTQ the plan's channel reorders are fused into the
 * weights ({@link ReorderFusion}), then every decoder linear becomes a {@link WeightOnlyLinear} (W4A16) or a
 * {@link LowBitLinear} (integer activations, ranges per tensor, per token or per cluster). Attention itself
 * (q·kᵀ, softmax, p·v), the LayerNorms, the embeddings and the LM head stay FP32 in every recipe for now.
 */
public final class RecipeApplier {
    private RecipeApplier() {
    }

    /**
     * @param base  FP32 model; must stay open while the returned model is used (they share tensors)
     * @param stats calibration of {@code base}; may be null when the recipe does not need calibration
     * @param alpha SmoothQuant migration strength
     * @return a model to close when done (closing it frees only what the recipe allocated)
     */
    public static OptModel apply(OptModel base, QuantRecipe recipe, CalibrationStats stats, float alpha) {
        return apply(base, QuantPlanner.plan(recipe, stats, alpha));
    }

    /** As {@link #apply(OptModel, QuantRecipe, CalibrationStats, float)} with {@code clusters} per RPTQ site. */
    public static OptModel apply(OptModel base, QuantRecipe recipe, CalibrationStats stats, float alpha, int clusters) {
        return apply(base, QuantPlanner.plan(recipe, stats, alpha, clusters));
    }

    /**
     * Builds the stage {@code plan} describes from {@code base}'s FP32 weights.
     *
     * @param base FP32 model; must stay open while the returned model is used (they share tensors)
     * @return a model to close when done (closing it frees only what the recipe allocated)
     */
    public static OptModel apply(OptModel base, QuantPlan plan) {
        return apply(base, plan, null);
    }

    /** As {@link #apply(OptModel, QuantRecipe, CalibrationStats, float, int)}, with the moments a GPTQ recipe needs. */
    public static OptModel apply(OptModel base, QuantRecipe recipe, CalibrationStats stats, float alpha, int clusters,
                                 Hessians hessians) {
        return apply(base, QuantPlanner.plan(recipe, stats, alpha, clusters), hessians);
    }

    /**
     * Any recipe from the calibration it was planned with: a GPTQ recipe rounds layer by layer over
     * {@code calibrationWindows} ({@link SequentialGptq}; {@code base} must own the embeddings), every other
     * recipe as {@link #apply(OptModel, QuantPlan)} and ignores them.
     */
    public static OptModel apply(OptModel base, QuantPlan plan, List<int[]> calibrationWindows, Progress gptqProgress) {
        return apply(base, plan, calibrationWindows, null, gptqProgress);
    }

    /**
     * As {@link #apply(OptModel, QuantPlan, List, Progress)}; with a {@code rangeSearch} (null: none) an RPTQ GPTQ
     * recipe's cluster ranges are searched layer by layer on the calibration windows ({@link ClusterRangeSearch});
     * any other recipe is refused with one, rather than silently built without it.
     */
    public static OptModel apply(OptModel base, QuantPlan plan, List<int[]> calibrationWindows,
                                 SequentialGptq.RangeSearch rangeSearch, Progress gptqProgress) {
        if (rangeSearch != null && !(plan.recipe().gptq() && plan.recipe().reorders())) {
            throw new IllegalArgumentException("recipe " + plan.recipe().name() + ": the activation range search is for "
                    + "RPTQ recipes rounded with GPTQ (it runs in GPTQ's layer-by-layer pass)");
        }
        if (!plan.recipe().gptq()) {
            return apply(base, plan);
        }
        if (calibrationWindows == null || calibrationWindows.isEmpty()) {
            throw new IllegalArgumentException("recipe " + plan.recipe().name() + " rounds with GPTQ over the calibration "
                    + "windows; none were given");
        }
        return SequentialGptq.fromWindows(base, plan, calibrationWindows, rangeSearch, gptqProgress);
    }

    /**
     * As {@link #apply(OptModel, QuantPlan)}; a GPTQ recipe rounds its weights with {@code hessians}, the moments
     * of this stage's calibration inputs (from a {@link HessianCollector} run beside the statistics).
     */
    public static OptModel apply(OptModel base, QuantPlan plan, Hessians hessians) {
        Arena arena = Arena.ofShared();
        try {
            return base.derive(quantizedWeights(base.weights(), plan, hessians, arena), arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * The stage's weights as {@code plan}'s recipe rebuilds them, every new tensor allocated in {@code arena}
     * (the originals are shared, not written): what {@link #apply} wraps in a model, and what a layer-by-layer
     * pass ({@link SequentialGptq}) takes one layer at a time.
     */
    static OptWeights quantizedWeights(OptWeights weights, QuantPlan plan, Hessians hessians, Arena arena) {
        QuantRecipe recipe = plan.recipe();
        if (recipe.gptq() && hessians == null) {
            throw new IllegalArgumentException("recipe " + recipe.name() + " rounds with GPTQ and needs the calibration "
                    + "inputs' moments (a HessianCollector beside the calibration); none were given");
        }
        CalibrationStats stats = plan.stats();
        float alpha = plan.alpha();
        CalibrationStats ranges = stats;
        if (recipe.smoothing()) {
            SmoothQuant.Result smoothed = SmoothQuant.smooth(weights, stats, alpha, arena);
            weights = smoothed.weights();
            ranges = smoothed.stats();
        }
        if (recipe.shifting()) {
            ChannelShift.Result shifted = ChannelShift.shift(weights, stats, arena);
            weights = shifted.weights();
            ranges = shifted.stats();
        }
        if (recipe.lowBit() != null) {
            if (recipe.reorders()) {
                weights = ReorderFusion.apply(weights, plan.reorders(), arena);
            }
            WeightRounding rounding = recipe.gptq() ? new WeightRounding.GptqRounding(hessians, recipe.shifting() ? stats : null,
                    plan.reorders()) : WeightRounding.NEAREST;
            weights = quantizeLowBit(weights, recipe.lowBit(), ranges, plan.reorders(), rounding, arena);
        } else if (recipe.quantizes()) {
            weights = quantize(weights, recipe.activations(), ranges, arena);
        }
        return weights;
    }

    private static OptWeights quantize(OptWeights weights, ActivationQuantization activations, CalibrationStats ranges,
                                       Arena arena) {
        LayerWeights[] layers = weights.layers();
        LayerWeights[] quantized = new LayerWeights[layers.length];
        for (int local = 0; local < layers.length; local++) {
            int layer = weights.range().first() + local;
            LayerWeights w = layers[local];
            LayerQuantizer q = (linear, name, site) -> {
                if (!(linear instanceof Linear fp32)) {
                    throw new IllegalArgumentException("layer " + layer + " " + name + " is already "
                            + linear.getClass().getSimpleName() + "; W8A8 quantizes FP32 weights");
                }
                float absMax = activations == ActivationQuantization.PER_TENSOR_STATIC
                        ? ranges.get(layer, site).tensorAbsMax() : Float.NaN;
                return W8A8Linear.quantize(fp32, activations, absMax, arena);
            };
            quantized[local] = replaceLinears(w, q);
        }
        return weights.withLayers(quantized);
    }

    private static OptWeights quantizeLowBit(OptWeights weights, LowBitScheme scheme, CalibrationStats stats,
                                             Map<CalibrationStats.Key, ClusterPlan> reorders, WeightRounding rounding,
                                             Arena arena) {
        LayerWeights[] layers = weights.layers();
        LayerWeights[] quantized = new LayerWeights[layers.length];
        for (int local = 0; local < layers.length; local++) {
            int layer = weights.range().first() + local;
            LayerWeights w = layers[local];
            LayerQuantizer q = (linear, name, site) -> {
                int[] gather = null;
                if (linear instanceof GatheredLinear gathered) {
                    gather = gathered.gather();
                    linear = gathered.linear();
                }
                if (!(linear instanceof Linear fp32)) {
                    throw new IllegalArgumentException("layer " + layer + " " + name + " is already "
                            + linear.getClass().getSimpleName() + "; low-bit recipes quantize FP32 weights");
                }
                PackedWeights packed = rounding.round(fp32, layer, site, gather, scheme, arena);
                if (scheme.biasCorrection()) {
                    fp32 = BiasCorrection.apply(fp32, packed, rounding.lastInputMean(), arena);
                }
                if (!scheme.integerActivations()) {
                    return WeightOnlyLinear.of(packed, fp32.bias());
                }
                int width = fp32.inFeatures();
                return switch (scheme.activationRanges()) {
                    case PER_TOKEN_DYNAMIC -> LowBitLinear.of(packed, fp32, scheme, new int[] {width}, new float[1],
                            new float[1], gather);
                    case PER_TENSOR_STATIC -> {
                        ChannelStats channels = stats.get(layer, site);
                        yield LowBitLinear.of(packed, fp32, scheme, new int[] {width}, new float[] {min(channels.min())},
                                new float[] {max(channels.max())}, gather);
                    }
                    case PER_CLUSTER_STATIC -> {
                        ClusterPlan plan = reorders.get(new CalibrationStats.Key(layer, site));
                        if (plan == null) {
                            throw new IllegalArgumentException("the plan has no channel clusters for layer " + layer
                                    + " " + site.key() + " (was it made for this recipe and these layers?)");
                        }
                        int[] ends = new int[plan.clusters()];
                        float[] lo = new float[plan.clusters()];
                        float[] hi = new float[plan.clusters()];
                        for (int c = 0; c < ends.length; c++) {
                            ends[c] = plan.clusterEnd(c);
                            lo[c] = plan.clusterMin(c);
                            hi[c] = plan.clusterMax(c);
                        }
                        yield LowBitLinear.of(packed, fp32, scheme, ends, lo, hi, gather);
                    }
                };
            };
            quantized[local] = replaceLinears(w, q);
        }
        return weights.withLayers(quantized);
    }

    /**
     * Bytes the six decoder linears of every layer take in memory (weights, scales, biases, per-cluster
     * tables): what a recipe shrinks. Embeddings, LM head and LayerNorms are not counted.
     */
    public static long linearBytes(OptWeights weights) {
        long total = 0;
        for (LayerWeights w : weights.layers()) {
            for (LinearLayer linear : new LinearLayer[] {w.qProj(), w.kProj(), w.vProj(), w.outProj(), w.fc1(), w.fc2()}) {
                total += StoredLinears.bytes(linear);
            }
        }
        return total;
    }

    private static float min(float[] values) {
        float m = Float.POSITIVE_INFINITY;
        for (float v : values) {
            m = Math.min(m, v);
        }
        return m;
    }

    private static float max(float[] values) {
        float m = Float.NEGATIVE_INFINITY;
        for (float v : values) {
            m = Math.max(m, v);
        }
        return m;
    }

    /** The layer with each of its six linears replaced by what {@code q} makes of it; LayerNorms kept. */
    private static LayerWeights replaceLinears(LayerWeights w, LayerQuantizer q) {
        return new LayerWeights(
                w.selfAttnLayerNorm(),
                q.apply(w.qProj(), "q_proj", ActivationSite.QKV_INPUT),
                q.apply(w.kProj(), "k_proj", ActivationSite.QKV_INPUT),
                q.apply(w.vProj(), "v_proj", ActivationSite.QKV_INPUT),
                q.apply(w.outProj(), "out_proj", ActivationSite.OUT_PROJ_INPUT),
                w.finalLayerNorm(),
                q.apply(w.fc1(), "fc1", ActivationSite.FC1_INPUT),
                q.apply(w.fc2(), "fc2", ActivationSite.FC2_INPUT));
    }

    @FunctionalInterface
    private interface LayerQuantizer {
        LinearLayer apply(LinearLayer linear, String name, ActivationSite site);
    }
}
