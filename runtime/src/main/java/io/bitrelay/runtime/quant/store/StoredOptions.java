package io.bitrelay.runtime.quant.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.quant.RangeEstimator;
import io.bitrelay.runtime.quant.RecipeOptions;

import java.util.List;

/**
 * The {@code "options"} object both store files carry ({@code recipe.json} and a stage file's metadata):
 * <pre>
 * "options": { "activationRanges": "batch-mean", "weights": "asymmetric", "biasCorrection": "off" }
 * </pre>
 * A file without it was written before the choices existed and is read as {@link RecipeOptions#LEGACY}, what it was
 * built with, so it still serves a start that asks for those and is rebuilt by one that asks for others.
 */
final class StoredOptions {
    static final String FIELD = "options";

    private StoredOptions() {
    }

    static void write(ObjectNode parent, RecipeOptions options) {
        parent.putObject(FIELD)
                .put("activationRanges", options.activationRanges().key())
                .put("weights", options.weightsKey())
                .put("biasCorrection", options.biasCorrection() ? "on" : "off");
    }

    /** @throws IllegalArgumentException naming the field, for a value this build does not know */
    static RecipeOptions read(JsonNode parent) {
        JsonNode node = parent.get(FIELD);
        if (node == null || node.isNull()) {
            return RecipeOptions.LEGACY;
        }
        String bias = node.path("biasCorrection").asText();
        if (!bias.equals("on") && !bias.equals("off")) {
            throw new IllegalArgumentException("options.biasCorrection: '" + bias + "' is not on or off");
        }
        return new RecipeOptions(RangeEstimator.parse(node.path("activationRanges").asText(), "options.activationRanges"),
                RecipeOptions.parseWeights(node.path("weights").asText(), "options.weights"), bias.equals("on"));
    }

    /** Adds to {@code differences} each choice that differs, naming both values. */
    static void differ(List<String> differences, RecipeOptions saved, RecipeOptions wanted) {
        StageFile.differ(differences, "activation ranges", saved.activationRanges().key(), wanted.activationRanges().key());
        StageFile.differ(differences, "weights", saved.weightsKey(), wanted.weightsKey());
        StageFile.differ(differences, "bias correction", saved.biasCorrection() ? "on" : "off", wanted.biasCorrection() ? "on" : "off");
    }
}
