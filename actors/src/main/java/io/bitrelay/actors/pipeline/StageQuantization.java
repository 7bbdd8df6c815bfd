package io.bitrelay.actors.pipeline;

import io.bitrelay.actors.serialization.ClusterMessage;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RecipeOptions;

/**
 * The quantization recipe a stage serves, as part of its {@link StageAssignment}.
 *
 * @param options       the coordinator's {@code bitrelay.quantization} choices: the estimator the stage records
 *                      activation ranges with while the recipe calibrates, and (as far as the recipe uses them)
 *                      what a saved stage must have been built with
 * @param fingerprint   the checkpoint's {@code ModelFingerprint}, which stage files must carry
 * @param restoreFile   a saved stage (quantization store) matching the recipe and placement to load instead
 *                      of waiting for a plan; null when the coordinator will calibrate
 * @param restoreCrc32c the CRC32C the store's recipe.json recorded for that file
 */
public record StageQuantization(String recipe, RecipeOptions options, float alpha, String fingerprint, String restoreFile,
                                long restoreCrc32c) implements ClusterMessage {

    /** The recipe this stage builds: the named one with the options applied. */
    public QuantRecipe quantRecipe() {
        return options.applyTo(QuantRecipe.byName(recipe));
    }
}
