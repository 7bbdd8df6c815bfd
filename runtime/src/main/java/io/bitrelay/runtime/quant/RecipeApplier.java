package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.OptWeights;

import java.lang.foreign.Arena;

/**
 * Builds the model a {@link QuantRecipe} describes from an FP32 model and its calibration statistics:
 * optionally SmoothQuant-folded, then every decoder linear (q, k, v, out_proj, fc1, fc2) replaced by a
 * {@link W8A8Linear}. Attention itself (q·kᵀ, softmax, p·v), the LayerNorms, the embeddings and the LM head
 * stay FP32 in every recipe for now.
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

    /**
     * Builds the stage {@code plan} describes from {@code base}'s FP32 weights.
     *
     * @param base FP32 model; must stay open while the returned model is used (they share tensors)
     * @return a model to close when done (closing it frees only what the recipe allocated)
     */
    public static OptModel apply(OptModel base, QuantPlan plan) {
        QuantRecipe recipe = plan.recipe();
        CalibrationStats stats = plan.stats();
        float alpha = plan.alpha();
        Arena arena = Arena.ofShared();
        try {
            OptWeights weights = base.weights();
            CalibrationStats ranges = stats;
            if (recipe.smoothing()) {
                SmoothQuant.Result smoothed = SmoothQuant.smooth(weights, stats, alpha, arena);
                weights = smoothed.weights();
                ranges = smoothed.stats();
            }
            if (recipe.quantizes()) {
                weights = quantize(weights, recipe.activations(), ranges, arena);
            }
            return base.derive(weights, arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
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
            quantized[local] = new LayerWeights(
                    w.selfAttnLayerNorm(),
                    q.apply(w.qProj(), "q_proj", ActivationSite.QKV_INPUT),
                    q.apply(w.kProj(), "k_proj", ActivationSite.QKV_INPUT),
                    q.apply(w.vProj(), "v_proj", ActivationSite.QKV_INPUT),
                    q.apply(w.outProj(), "out_proj", ActivationSite.OUT_PROJ_INPUT),
                    w.finalLayerNorm(),
                    q.apply(w.fc1(), "fc1", ActivationSite.FC1_INPUT),
                    q.apply(w.fc2(), "fc2", ActivationSite.FC2_INPUT));
        }
        return weights.withLayers(quantized);
    }

    @FunctionalInterface
    private interface LayerQuantizer {
        LinearLayer apply(LinearLayer linear, String name, ActivationSite site);
    }
}
