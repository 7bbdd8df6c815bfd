package io.bitrelay.actors.coordinator;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import io.bitrelay.runtime.model.opt.KvPrecision;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RangeEstimator;
import io.bitrelay.runtime.quant.RecipeOptions;

/**
 * The recipe the stages serve, from {@code bitrelay.quantization} (defaults and documentation in
 * configs/bitrelay.conf).
 *
 * @param recipe              the named recipe with {@code options} applied (its 3/4-bit weights' grid, bias correction)
 * @param options             {@code activation-ranges}, {@code weights}, {@code bias-correction}: as {@code bitrelay eval}'s
 *                            {@code --act-ranges}, {@code --weights}, {@code --bias-correction}, with the same defaults
 * @param calibrationText     text file the calibration sequences are cut from (tokenized with the model's
 *                            tokenizer), or "" for random token ids
 * @param calibrationSequences calibration sequences streamed through the pipeline
 * @param calibrationTokens   tokens per calibration sequence (capped at the model's context)
 * @param batchSequences      calibration sequences per micro-batch
 * @param store               directory of the quantization store (recipe.json, statistics, one file per stage),
 *                            or "" to calibrate on every start
 * @param kvCache             how every stage's KV cache stores keys and values ({@code kv-cache}: fp32, int8,
 *                            int4, int3); independent of the recipe
 */
public record QuantizationSettings(QuantRecipe recipe, RecipeOptions options, float alpha, String calibrationText,
                                   int calibrationSequences, int calibrationTokens, long calibrationSeed, int batchSequences,
                                   String store, KvPrecision kvCache) {

    public static final QuantizationSettings FP32 = new QuantizationSettings(QuantRecipe.FP32, RecipeOptions.DEFAULT, 0.5f, "",
            1, 1, 0, 1, "", KvPrecision.FP32);

    private static final String KEY = "bitrelay.quantization.";

    public static QuantizationSettings from(Config root) {
        if (!root.hasPath("bitrelay.quantization")) {
            return FP32;
        }
        Config c = root.getConfig("bitrelay.quantization");
        try {
            QuantRecipe recipe;
            try {
                recipe = QuantRecipe.byName(c.getString("recipe"));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("bitrelay.quantization.recipe: " + e.getMessage(), e);
            }
            RecipeOptions options = options(c);
            double alpha = c.getDouble("alpha");
            if (!(alpha >= 0 && alpha <= 1)) {
                throw new IllegalArgumentException("bitrelay.quantization.alpha must be in [0, 1], got " + alpha);
            }
            return new QuantizationSettings(options.applyTo(recipe), options, (float) alpha, c.getString("calibration.text"),
                    positive(c, "calibration.sequences"), positive(c, "calibration.tokens"), c.getLong("calibration.seed"),
                    positive(c, "calibration.batch-sequences"), c.getString("store"), kvCache(c));
        } catch (ConfigException e) {
            throw new IllegalArgumentException("bad quantization config: " + e.getMessage(), e);
        }
    }

    /** The recipe changes the stages: they need a plan (or a saved stage). */
    public boolean quantizes() {
        return recipe.quantizes() || recipe.smoothing();
    }

    private static RecipeOptions options(Config c) {
        return new RecipeOptions(RangeEstimator.parse(c.getString("activation-ranges"), KEY + "activation-ranges"),
                RecipeOptions.parseWeights(c.getString("weights"), KEY + "weights"), onOff(c, "bias-correction"));
    }

    private static boolean onOff(Config c, String key) {
        try {
            return c.getBoolean(key);
        } catch (ConfigException.WrongType e) {
            throw new IllegalArgumentException(KEY + key + ": '" + c.getValue(key).unwrapped() + "' is not on or off", e);
        }
    }

    private static KvPrecision kvCache(Config c) {
        if (!c.hasPath("kv-cache")) {
            return KvPrecision.FP32;
        }
        try {
            return KvPrecision.parse(c.getString("kv-cache"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bitrelay.quantization.kv-cache: " + e.getMessage(), e);
        }
    }

    private static int positive(Config c, String key) {
        int value = c.getInt(key);
        if (value < 1) {
            throw new IllegalArgumentException("bitrelay.quantization." + key + " must be ≥ 1, got " + value);
        }
        return value;
    }
}
