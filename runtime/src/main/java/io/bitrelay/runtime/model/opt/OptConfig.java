package io.bitrelay.runtime.model.opt;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.checkpoint.CheckpointException;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The shape of an OPT model, read from (and written as) a Hugging Face config.json.
 *
 * @param wordEmbedProjDim width of the token embeddings; when it differs from {@code hiddenSize}
 *                         the model has project_in/project_out (opt-350m)
 * @param doLayerNormBefore pre-LayerNorm (true for every OPT but 350m)
 * @param removeFinalLayerNorm HF's {@code _remove_final_layer_norm}: only for legacy checkpoints
 */
public record OptConfig(
        int vocabSize,
        int hiddenSize,
        int numLayers,
        int numHeads,
        int ffnDim,
        int maxPositions,
        int wordEmbedProjDim,
        boolean doLayerNormBefore,
        boolean removeFinalLayerNorm,
        boolean enableBias,
        int bosTokenId,
        int eosTokenId,
        int padTokenId,
        String storageDtype) {

    /** OPT's learned positional embedding table has this many extra rows in front (a fairseq legacy). */
    public static final int POSITION_OFFSET = 2;
    public static final float LAYER_NORM_EPS = 1e-5f;
    private static final ObjectMapper JSON = new ObjectMapper();

    public OptConfig {
        requirePositive("vocab_size", vocabSize);
        requirePositive("hidden_size", hiddenSize);
        requirePositive("num_hidden_layers", numLayers);
        requirePositive("num_attention_heads", numHeads);
        requirePositive("ffn_dim", ffnDim);
        requirePositive("max_position_embeddings", maxPositions);
        requirePositive("word_embed_proj_dim", wordEmbedProjDim);
        if (hiddenSize % numHeads != 0) {
            throw new IllegalArgumentException("hidden_size " + hiddenSize + " is not divisible by num_attention_heads " + numHeads);
        }
    }

    private static void requirePositive(String key, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(key + " must be positive, got " + value);
        }
    }

    public int headDim() {
        return hiddenSize / numHeads;
    }

    public boolean hasProjections() {
        return wordEmbedProjDim != hiddenSize;
    }

    /** HF builds decoder.final_layer_norm only for pre-LN models that did not remove it. */
    public boolean hasFinalLayerNorm() {
        return doLayerNormBefore && !removeFinalLayerNorm;
    }

    public OptConfig withStorageDtype(String dtype) {
        return new OptConfig(vocabSize, hiddenSize, numLayers, numHeads, ffnDim, maxPositions, wordEmbedProjDim,
                doLayerNormBefore, removeFinalLayerNorm, enableBias, bosTokenId, eosTokenId, padTokenId, dtype);
    }

    public OptConfig withLayers(int layers) {
        return new OptConfig(vocabSize, hiddenSize, layers, numHeads, ffnDim, maxPositions, wordEmbedProjDim,
                doLayerNormBefore, removeFinalLayerNorm, enableBias, bosTokenId, eosTokenId, padTokenId, storageDtype);
    }

    /** Parameters of one decoder layer (weights and biases). */
    public long layerParameters() {
        long h = hiddenSize;
        long attention = 4 * (h * h + h);
        long ffn = h * ffnDim + ffnDim + (long) ffnDim * h + h;
        long norms = 4 * h;
        return attention + ffn + norms;
    }

    public static OptConfig read(Path configJson) {
        JsonNode root;
        try {
            root = JSON.readTree(configJson.toFile());
        } catch (IOException e) {
            throw new CheckpointException(configJson + ": not valid JSON: " + e.getMessage(), e);
        }
        try {
            return fromJson(root);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(configJson + ": " + e.getMessage(), e);
        }
    }

    static OptConfig fromJson(JsonNode root) {
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException("config is not a JSON object");
        }
        String modelType = text(root, "model_type", "opt");
        if (!modelType.equals("opt")) {
            throw new IllegalArgumentException("model_type is '" + modelType + "', only 'opt' is supported");
        }
        String activation = text(root, "activation_function", "relu");
        if (!activation.equals("relu")) {
            throw new IllegalArgumentException("activation_function '" + activation + "' is not supported (OPT uses relu)");
        }
        if (!bool(root, "layer_norm_elementwise_affine", true)) {
            throw new IllegalArgumentException("layer_norm_elementwise_affine=false is not supported");
        }
        int hidden = integer(root, "hidden_size", null);
        // Newer transformers write "dtype", older "torch_dtype".
        String dtype = root.has("dtype") ? text(root, "dtype", "float32") : text(root, "torch_dtype", "float32");
        return new OptConfig(
                integer(root, "vocab_size", null),
                hidden,
                integer(root, "num_hidden_layers", null),
                integer(root, "num_attention_heads", null),
                integer(root, "ffn_dim", null),
                integer(root, "max_position_embeddings", null),
                integer(root, "word_embed_proj_dim", hidden),
                bool(root, "do_layer_norm_before", true),
                bool(root, "_remove_final_layer_norm", false),
                bool(root, "enable_bias", true),
                integer(root, "bos_token_id", 2),
                integer(root, "eos_token_id", 2),
                integer(root, "pad_token_id", 1),
                dtype);
    }

    private static int integer(JsonNode root, String key, Integer fallback) {
        JsonNode node = root.get(key);
        if (node == null || node.isNull()) {
            if (fallback == null) {
                throw new IllegalArgumentException("missing required key '" + key + "'");
            }
            return fallback;
        }
        if (!node.canConvertToInt() || !node.isIntegralNumber()) {
            throw new IllegalArgumentException("key '" + key + "' must be an integer, got " + node);
        }
        return node.intValue();
    }

    private static boolean bool(JsonNode root, String key, boolean fallback) {
        JsonNode node = root.get(key);
        if (node == null || node.isNull()) {
            return fallback;
        }
        if (!node.isBoolean()) {
            throw new IllegalArgumentException("key '" + key + "' must be true or false, got " + node);
        }
        return node.booleanValue();
    }

    private static String text(JsonNode root, String key, String fallback) {
        JsonNode node = root.get(key);
        return node == null || node.isNull() ? fallback : node.asText();
    }

    /** The config.json Hugging Face transformers reads for this shape. */
    public String toJson() {
        ObjectNode root = JSON.createObjectNode();
        root.putArray("architectures").add("OPTForCausalLM");
        root.put("model_type", "opt");
        root.put("activation_function", "relu");
        root.put("vocab_size", vocabSize);
        root.put("hidden_size", hiddenSize);
        root.put("num_hidden_layers", numLayers);
        root.put("num_attention_heads", numHeads);
        root.put("ffn_dim", ffnDim);
        root.put("max_position_embeddings", maxPositions);
        root.put("word_embed_proj_dim", wordEmbedProjDim);
        root.put("do_layer_norm_before", doLayerNormBefore);
        root.put("_remove_final_layer_norm", removeFinalLayerNorm);
        root.put("enable_bias", enableBias);
        root.put("layer_norm_elementwise_affine", true);
        root.put("bos_token_id", bosTokenId);
        root.put("eos_token_id", eosTokenId);
        root.put("pad_token_id", padTokenId);
        root.put("torch_dtype", storageDtype);
        root.put("tie_word_embeddings", true);
        root.put("dropout", 0.0);
        root.put("attention_dropout", 0.0);
        root.put("layerdrop", 0.0);
        root.put("init_std", 0.02);
        root.put("use_cache", true);
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
