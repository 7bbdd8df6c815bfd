package io.bitrelay.runtime.synthetic;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.checkpoint.HfCheckpoint;
import io.bitrelay.runtime.checkpoint.SafetensorsWriter;
import io.bitrelay.runtime.checkpoint.SafetensorsWriter.Declared;
import io.bitrelay.runtime.model.opt.OptConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Writes a Hugging Face OPT checkpoint directory (config.json, safetensors, tokenizer.json) of any shape,
 * with deterministic pseudo-random weights: each tensor is a function of (seed, name) alone, so the same
 * options always give the same bytes. Weights are scaled so activations stay O(1) through the layers and
 * logits have a spread of a few units (greedy decoding then has clear winners).
 */
public final class SyntheticCheckpointWriter {
    private static final String PREFIX = "model.decoder.";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final OptConfig config;
    private final SyntheticOptions options;

    private SyntheticCheckpointWriter(OptConfig config, SyntheticOptions options) {
        this.config = config.withStorageDtype(switch (options.storage()) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            default -> throw new IllegalArgumentException("storage must be F32, F16 or BF16");
        });
        this.options = options;
        if (options.outliers() && !config.doLayerNormBefore()) {
            throw new IllegalArgumentException("outliers are planted at pre-LayerNorm outputs; this config is post-LayerNorm");
        }
    }

    /** Writes the checkpoint into {@code directory} (created if needed) and returns it. */
    public static Path write(Path directory, OptConfig config, SyntheticOptions options) {
        try {
            Files.createDirectories(directory);
            new SyntheticCheckpointWriter(config, options).writeAll(directory);
            return directory;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write synthetic checkpoint to " + directory + ": " + e.getMessage(), e);
        }
    }

    private void writeAll(Path directory) throws IOException {
        List<Declared> tensors = declare();
        List<List<Declared>> shards = shard(tensors);
        Map<String, Integer> shardOf = new LinkedHashMap<>();
        for (int s = 0; s < shards.size(); s++) {
            for (Declared tensor : shards.get(s)) {
                shardOf.put(tensor.name(), s);
            }
        }
        List<String> shardNames = shardNames(shards.size());
        ShardedOutput output = new ShardedOutput(directory, shards, shardNames);
        ObjectNode plan = JSON.createObjectNode();
        ArrayNode planLayers = plan.putArray("layers");

        output.put(PREFIX + "embed_tokens.weight", gaussian(PREFIX + "embed_tokens.weight",
                (long) config.vocabSize() * config.wordEmbedProjDim(), 2.0 / Math.sqrt(config.wordEmbedProjDim())));
        output.put(PREFIX + "embed_positions.weight", gaussian(PREFIX + "embed_positions.weight",
                (long) (config.maxPositions() + OptConfig.POSITION_OFFSET) * config.hiddenSize(), 0.5 / Math.sqrt(config.hiddenSize())));
        if (config.hasProjections()) {
            output.put(PREFIX + "project_in.weight", gaussian(PREFIX + "project_in.weight",
                    (long) config.hiddenSize() * config.wordEmbedProjDim(), 1.0 / Math.sqrt(config.wordEmbedProjDim())));
            output.put(PREFIX + "project_out.weight", gaussian(PREFIX + "project_out.weight",
                    (long) config.wordEmbedProjDim() * config.hiddenSize(), 1.0 / Math.sqrt(config.hiddenSize())));
        }
        if (config.hasFinalLayerNorm()) {
            output.put(PREFIX + "final_layer_norm.weight", layerNormGain(PREFIX + "final_layer_norm.weight"));
            output.put(PREFIX + "final_layer_norm.bias", gaussian(PREFIX + "final_layer_norm.bias", config.hiddenSize(), 0.02));
        }
        for (int layer = 0; layer < config.numLayers(); layer++) {
            Map<String, float[]> values = layer(layer, planLayers);
            for (Map.Entry<String, float[]> entry : values.entrySet()) {
                output.put(entry.getKey(), entry.getValue());
            }
        }
        output.finish();

        Files.writeString(directory.resolve(HfCheckpoint.CONFIG_FILE), config.toJson());
        if (shards.size() > 1) {
            writeIndex(directory, shardOf, shardNames, tensors);
        }
        ByteLevelTokenizerWriter.write(directory, config);
        if (options.outliers()) {
            plan.put("seed", options.seed());
            Files.writeString(directory.resolve("outlier_plan.json"),
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsString(plan) + "\n");
        }
    }

    private Map<String, float[]> layer(int layer, ArrayNode planLayers) {
        String p = PREFIX + "layers." + layer + ".";
        int hidden = config.hiddenSize();
        int ffn = config.ffnDim();
        Map<String, float[]> values = new LinkedHashMap<>();
        values.put(p + "self_attn_layer_norm.weight", layerNormGain(p + "self_attn_layer_norm.weight"));
        values.put(p + "self_attn_layer_norm.bias", gaussian(p + "self_attn_layer_norm.bias", hidden, 0.02));
        for (String proj : List.of("q_proj", "k_proj", "v_proj", "out_proj")) {
            linear(values, p + "self_attn." + proj, hidden, hidden);
        }
        values.put(p + "final_layer_norm.weight", layerNormGain(p + "final_layer_norm.weight"));
        values.put(p + "final_layer_norm.bias", gaussian(p + "final_layer_norm.bias", hidden, 0.02));
        linear(values, p + "fc1", ffn, hidden);
        linear(values, p + "fc2", hidden, ffn);
        if (options.outliers()) {
            ObjectNode layerPlan = planLayers.addObject();
            layerPlan.put("layer", layer);
            plantAt(values, p + "self_attn_layer_norm",
                    List.of(p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"), layerPlan);
            plantAt(values, p + "final_layer_norm", List.of(p + "fc1"), layerPlan);
        }
        return values;
    }

    private void plantAt(Map<String, float[]> values, String norm, List<String> consumers, ObjectNode layerPlan) {
        SplittableRandom random = random("outliers." + norm);
        List<OutlierPlanter.Outlier> outliers = OutlierPlanter.draw(random, config.hiddenSize(),
                options.scaledChannels(), options.shiftedChannels());
        List<float[][]> consumerTensors = new ArrayList<>();
        for (String consumer : consumers) {
            float[] bias = values.get(consumer + ".bias");
            if (bias == null) {
                throw new IllegalArgumentException("outliers need consumer biases (enable_bias=true)");
            }
            consumerTensors.add(new float[][]{values.get(consumer + ".weight"), bias});
        }
        OutlierPlanter.plant(outliers, values.get(norm + ".weight"), values.get(norm + ".bias"), consumerTensors,
                config.hiddenSize());
        ArrayNode planned = layerPlan.putArray(norm.substring(norm.lastIndexOf('.') + 1));
        for (OutlierPlanter.Outlier outlier : outliers) {
            planned.addObject().put("channel", outlier.channel()).put("scale", outlier.scale()).put("shift", outlier.shift());
        }
    }

    private void linear(Map<String, float[]> values, String name, int out, int in) {
        values.put(name + ".weight", gaussian(name + ".weight", (long) out * in, 1.0 / Math.sqrt(in)));
        if (config.enableBias()) {
            values.put(name + ".bias", gaussian(name + ".bias", out, 0.02));
        }
    }

    private float[] layerNormGain(String name) {
        float[] gain = gaussian(name, config.hiddenSize(), 0.1);
        for (int i = 0; i < gain.length; i++) {
            gain[i] += 1f;
        }
        return gain;
    }

    private float[] gaussian(String name, long count, double std) {
        if (count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor " + name + " of " + count + " elements is too large for the synthetic writer");
        }
        SplittableRandom random = random(name);
        float[] values = new float[(int) count];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (random.nextGaussian() * std);
        }
        return values;
    }

    private SplittableRandom random(String name) {
        long hash = 0xcbf29ce484222325L; // FNV-1a 64: stable across JVMs, unlike String.hashCode's spread
        for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
            hash = (hash ^ (b & 0xff)) * 0x100000001b3L;
        }
        return new SplittableRandom(options.seed() * 0x9E3779B97F4A7C15L ^ hash);
    }

    private List<Declared> declare() {
        int hidden = config.hiddenSize();
        int embed = config.wordEmbedProjDim();
        int ffn = config.ffnDim();
        List<Declared> tensors = new ArrayList<>();
        tensors.add(new Declared(PREFIX + "embed_tokens.weight", new long[]{config.vocabSize(), embed}));
        tensors.add(new Declared(PREFIX + "embed_positions.weight", new long[]{config.maxPositions() + OptConfig.POSITION_OFFSET, hidden}));
        if (config.hasProjections()) {
            tensors.add(new Declared(PREFIX + "project_in.weight", new long[]{hidden, embed}));
            tensors.add(new Declared(PREFIX + "project_out.weight", new long[]{embed, hidden}));
        }
        if (config.hasFinalLayerNorm()) {
            tensors.add(new Declared(PREFIX + "final_layer_norm.weight", new long[]{hidden}));
            tensors.add(new Declared(PREFIX + "final_layer_norm.bias", new long[]{hidden}));
        }
        for (int layer = 0; layer < config.numLayers(); layer++) {
            String p = PREFIX + "layers." + layer + ".";
            tensors.add(new Declared(p + "self_attn_layer_norm.weight", new long[]{hidden}));
            tensors.add(new Declared(p + "self_attn_layer_norm.bias", new long[]{hidden}));
            for (String proj : List.of("q_proj", "k_proj", "v_proj", "out_proj")) {
                declareLinear(tensors, p + "self_attn." + proj, hidden, hidden);
            }
            tensors.add(new Declared(p + "final_layer_norm.weight", new long[]{hidden}));
            tensors.add(new Declared(p + "final_layer_norm.bias", new long[]{hidden}));
            declareLinear(tensors, p + "fc1", ffn, hidden);
            declareLinear(tensors, p + "fc2", hidden, ffn);
        }
        return tensors;
    }

    private void declareLinear(List<Declared> tensors, String name, int out, int in) {
        tensors.add(new Declared(name + ".weight", new long[]{out, in}));
        if (config.enableBias()) {
            tensors.add(new Declared(name + ".bias", new long[]{out}));
        }
    }

    private List<List<Declared>> shard(List<Declared> tensors) {
        List<List<Declared>> shards = new ArrayList<>();
        List<Declared> current = new ArrayList<>();
        long currentBytes = 0;
        for (Declared tensor : tensors) {
            long bytes = tensor.elements() * options.storage().byteSize();
            if (options.shardBytes() > 0 && !current.isEmpty() && currentBytes + bytes > options.shardBytes()) {
                shards.add(current);
                current = new ArrayList<>();
                currentBytes = 0;
            }
            current.add(tensor);
            currentBytes += bytes;
        }
        shards.add(current);
        return shards;
    }

    private static List<String> shardNames(int count) {
        if (count == 1) {
            return List.of(HfCheckpoint.SINGLE_FILE);
        }
        List<String> names = new ArrayList<>();
        for (int i = 1; i <= count; i++) {
            names.add(String.format("model-%05d-of-%05d.safetensors", i, count));
        }
        return names;
    }

    private void writeIndex(Path directory, Map<String, Integer> shardOf, List<String> shardNames,
                            List<Declared> tensors) throws IOException {
        ObjectNode index = JSON.createObjectNode();
        long total = 0;
        for (Declared tensor : tensors) {
            total += tensor.elements() * options.storage().byteSize();
        }
        index.putObject("metadata").put("total_size", total);
        ObjectNode weightMap = index.putObject("weight_map");
        shardOf.forEach((name, shard) -> weightMap.put(name, shardNames.get(shard)));
        Files.writeString(directory.resolve(HfCheckpoint.INDEX_FILE),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(index) + "\n");
    }

    /** Routes tensors, in declaration order, to the shard each was planned into. */
    private final class ShardedOutput {
        private final Path directory;
        private final List<List<Declared>> shards;
        private final List<String> names;
        private int shard = -1;
        private int written;
        private SafetensorsWriter writer;

        ShardedOutput(Path directory, List<List<Declared>> shards, List<String> names) {
            this.directory = directory;
            this.shards = shards;
            this.names = names;
        }

        void put(String name, float[] values) throws IOException {
            if (writer == null || written == shards.get(shard).size()) {
                if (writer != null) {
                    writer.close();
                }
                shard++;
                written = 0;
                writer = new SafetensorsWriter(directory.resolve(names.get(shard)), options.storage(), shards.get(shard));
            }
            writer.write(name, values);
            written++;
        }

        void finish() throws IOException {
            if (writer != null) {
                writer.close();
            }
        }
    }
}
