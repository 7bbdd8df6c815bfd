package io.bitrelay.runtime.quant;

import java.util.Map;

/**
 * Everything needed to turn an FP32 stage into the stage a {@link QuantRecipe} describes, decided once
 * from calibration: the coordinator computes it from the statistics the stages sent back and ships each
 * worker its part; {@link RecipeApplier#apply(io.bitrelay.runtime.model.opt.OptModel, QuantPlan)} then
 * builds the stage from its own weights. Pure data: the same plan always builds the same weights.
 *
 * @param recipe   what to build
 * @param alpha    SmoothQuant migration strength (used only when the recipe smooths)
 * @param stats    the calibration the plan was made from; may be null when the recipe needs none
 * @param reorders RPTQ channel plans by (layer, site): the permutation fused into the weights and each
 *                 cluster's calibrated range; empty for recipes that do not reorder
 */
public record QuantPlan(QuantRecipe recipe, float alpha, CalibrationStats stats,
                        Map<CalibrationStats.Key, ClusterPlan> reorders) {
    public QuantPlan {
        if (recipe.needsCalibration() && stats == null) {
            throw new IllegalArgumentException("recipe " + recipe.name() + " needs calibration statistics");
        }
        reorders = Map.copyOf(reorders);
    }
}
