package io.bitrelay.runtime.quant.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.quant.RecipeOptions;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The quantization store's index, {@code recipe.json}: which recipe was built, from which model and which
 * calibration, for which placement, and where each stage's quantized layers and the statistics lie. The
 * coordinator writes it last, once every stage has saved its file, so a store is either complete or has no
 * recipe; on start it is compared with the configuration ({@link #differences}) and reused only when
 * everything matches.
 *
 * <pre>
 * { "format": "bitrelay-quant-recipe/1", "recipe": "w8a8-smoothquant", "alpha": "0.5",
 *   "options": { "activationRanges": "min-max", "weights": "symmetric", "biasCorrection": "off" },
 *   "model": { "checkpoint": "/models/opt-125m", "fingerprint": "3f1c…" },
 *   "calibration": { "text": "", "textSha256": "", "sequences": 128, "tokens": 512, "seed": 2304,
 *                    "stats": "calibration-stats.json", "seconds": 41.2 },
 *   "stages": [ { "stage": 0, "firstLayer": 0, "endLayer": 4, "file": "stage-layers-000-004.safetensors",
 *                 "bytes": 7102464, "crc32c": "1a2b3c4d" }, … ] }
 * </pre>
 * {@code options} are the recipe's choices that change what it builds ({@link RecipeOptions#effectiveFor}); an index
 * without them was written before they existed and reads as {@link RecipeOptions#LEGACY}.
 */
public record SavedRecipe(String recipe, float alpha, RecipeOptions options, String checkpoint, String fingerprint, Calibration calibration,
                          String statsFile, double calibrationSeconds, List<Stage> stages) {
    public static final String FORMAT = "bitrelay-quant-recipe/1";
    public static final String FILE_NAME = "recipe.json";
    public static final String STATS_FILE_NAME = "calibration-stats.json";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /**
     * How the statistics were made; two calibrations with equal settings give the same statistics.
     *
     * @param text       calibration text file, or "" for random token ids
     * @param textSha256 SHA-256 of that file's bytes ("" without a file): an edited file at the same path differs
     */
    public record Calibration(String text, String textSha256, int sequences, int tokens, long seed) {
    }

    /** One stage's saved layers. */
    public record Stage(int stage, int firstLayer, int endLayer, String file, long bytes, long crc32c) {
    }

    public SavedRecipe {
        stages = List.copyOf(stages);
    }

    /** Writes {@code directory/recipe.json} through a temporary file moved into place. */
    public void write(Path directory) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("recipe", recipe);
        root.put("alpha", Float.toString(alpha));
        StoredOptions.write(root, options);
        ObjectNode model = root.putObject("model");
        model.put("checkpoint", checkpoint);
        model.put("fingerprint", fingerprint);
        ObjectNode cal = root.putObject("calibration");
        cal.put("text", calibration.text());
        cal.put("textSha256", calibration.textSha256());
        cal.put("sequences", calibration.sequences());
        cal.put("tokens", calibration.tokens());
        cal.put("seed", calibration.seed());
        cal.put("stats", statsFile == null ? "" : statsFile);
        cal.put("seconds", calibrationSeconds);
        ArrayNode list = root.putArray("stages");
        for (Stage stage : stages) {
            list.addObject().put("stage", stage.stage()).put("firstLayer", stage.firstLayer()).put("endLayer", stage.endLayer())
                    .put("file", stage.file()).put("bytes", stage.bytes()).put("crc32c", Long.toHexString(stage.crc32c()));
        }
        Path file = directory.resolve(FILE_NAME);
        Path temp = directory.resolve(FILE_NAME + ".tmp");
        try {
            Files.createDirectories(directory);
            JSON.writeValue(temp.toFile(), root);
            Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new QuantStoreException(file + ": cannot write: " + e.getMessage(), e);
        }
    }

    /** Reads {@code directory/recipe.json}; null when there is none. */
    public static SavedRecipe read(Path directory) {
        Path file = directory.resolve(FILE_NAME);
        if (!Files.isRegularFile(file)) {
            return null;
        }
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new QuantStoreException(file + ": corrupt (not valid JSON: " + e.getMessage().lines().findFirst().orElse("") + ")", e);
        }
        if (root == null || !FORMAT.equals(root.path("format").asText())) {
            throw new QuantStoreException(file + ": format must be " + FORMAT);
        }
        try {
            JsonNode cal = root.path("calibration");
            List<Stage> stages = new ArrayList<>();
            for (JsonNode s : root.path("stages")) {
                stages.add(new Stage(required(s, "stage").asInt(), required(s, "firstLayer").asInt(), required(s, "endLayer").asInt(),
                        required(s, "file").asText(), required(s, "bytes").asLong(), Long.parseLong(required(s, "crc32c").asText(), 16)));
            }
            return new SavedRecipe(required(root, "recipe").asText(), Float.parseFloat(required(root, "alpha").asText()),
                    StoredOptions.read(root),
                    root.path("model").path("checkpoint").asText(), required(root.path("model"), "fingerprint").asText(),
                    new Calibration(cal.path("text").asText(), cal.path("textSha256").asText(), required(cal, "sequences").asInt(),
                            required(cal, "tokens").asInt(), required(cal, "seed").asLong()),
                    cal.path("stats").asText(), cal.path("seconds").asDouble(), stages);
        } catch (IllegalArgumentException e) {
            throw new QuantStoreException(file + ": corrupt: " + e.getMessage(), e);
        }
    }

    private static JsonNode required(JsonNode node, String field) {
        JsonNode value = node.get(field);
        if (value == null || value.isNull()) {
            throw new IllegalArgumentException("field '" + field + "' is missing");
        }
        return value;
    }

    /**
     * What differs between this saved recipe and the wanted one (same fields; stages compared by layer range
     * only); empty when the saved one can be reused. Each entry names the field and both values.
     */
    public List<String> differences(String wantedRecipe, float wantedAlpha, RecipeOptions wantedOptions, String wantedFingerprint,
                                    Calibration wantedCalibration, List<int[]> wantedLayerRanges) {
        List<String> differences = new ArrayList<>();
        StageFile.differ(differences, "recipe", recipe, wantedRecipe);
        StageFile.differ(differences, "alpha", Float.toString(alpha), Float.toString(wantedAlpha));
        StoredOptions.differ(differences, options, wantedOptions);
        StageFile.differ(differences, "model fingerprint", fingerprint, wantedFingerprint);
        StageFile.differ(differences, "calibration", calibration.toString(), wantedCalibration.toString());
        StageFile.differ(differences, "layer ranges", ranges(stages.stream().map(s -> new int[]{s.firstLayer(), s.endLayer()}).toList()),
                ranges(wantedLayerRanges));
        return differences;
    }

    private static String ranges(List<int[]> ranges) {
        StringBuilder text = new StringBuilder();
        for (int[] range : ranges) {
            text.append(text.isEmpty() ? "" : " ").append('[').append(range[0]).append(", ").append(range[1]).append(')');
        }
        return text.toString();
    }
}
