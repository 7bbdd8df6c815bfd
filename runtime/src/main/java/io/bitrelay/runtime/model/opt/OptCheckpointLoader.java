package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.checkpoint.CheckpointException;
import io.bitrelay.runtime.checkpoint.HfCheckpoint;
import io.bitrelay.runtime.checkpoint.HfCheckpoint.StoredTensor;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.tensor.Fp32Tensors;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Reads the tensors of one stage out of a Hugging Face OPT checkpoint, checking every shape against
 * config.json. Checkpoints name tensors "model.decoder.…" (current transformers) or "decoder.…"
 * (the original facebook/opt-* uploads); both are accepted.
 */
public final class OptCheckpointLoader {
    private static final List<String> DECODER_PREFIXES = List.of("model.decoder.", "decoder.");

    private final HfCheckpoint checkpoint;
    private final OptConfig config;
    private final Arena arena;
    private final String prefix;

    private OptCheckpointLoader(HfCheckpoint checkpoint, OptConfig config, Arena arena) {
        this.checkpoint = checkpoint;
        this.config = config;
        this.arena = arena;
        this.prefix = DECODER_PREFIXES.stream()
                .filter(p -> checkpoint.contains(p + "embed_tokens.weight") || checkpoint.contains(p + "layers.0.fc1.weight"))
                .findFirst()
                .orElseThrow(() -> new CheckpointException(checkpoint.directory()
                        + ": no OPT decoder tensors (expected model.decoder.embed_tokens.weight or decoder.embed_tokens.weight)"));
    }

    /** Loads {@code range} of the model; FP32 tensors stay memory-mapped, others are widened into {@code arena}. */
    public static OptWeights load(HfCheckpoint checkpoint, OptConfig config, LayerRange range, Arena arena) {
        checkRange(checkpoint, config, range);
        return new OptCheckpointLoader(checkpoint, config, arena).load(range, true);
    }

    /**
     * {@code range}'s embeddings, final LayerNorm and head, as {@link #load} reads them, and none of its decoder
     * layers ({@code layers()} is empty): for a stage whose layers go to a GPU one at a time ({@link #loadLayer}).
     */
    public static OptWeights loadWithoutLayers(HfCheckpoint checkpoint, OptConfig config, LayerRange range, Arena arena) {
        checkRange(checkpoint, config, range);
        return new OptCheckpointLoader(checkpoint, config, arena).load(range, false);
    }

    private static void checkRange(HfCheckpoint checkpoint, OptConfig config, LayerRange range) {
        if (range.totalLayers() != config.numLayers()) {
            throw new CheckpointException(checkpoint.directory() + ": asked for " + range + " but config.json has "
                    + config.numLayers() + " layers");
        }
    }

    /** Decoder layer {@code index} alone, as {@link #load} reads it (its FP16 tensors widened into {@code arena}). */
    public static LayerWeights loadLayer(HfCheckpoint checkpoint, OptConfig config, int index, Arena arena) {
        if (index < 0 || index >= config.numLayers()) {
            throw new CheckpointException(checkpoint.directory() + ": asked for layer " + index + " but config.json has "
                    + config.numLayers() + " layers");
        }
        return new OptCheckpointLoader(checkpoint, config, arena).layer(index);
    }

    private OptWeights load(LayerRange range, boolean withLayers) {
        int hidden = config.hiddenSize();
        int embed = config.wordEmbedProjDim();
        boolean needsTokenTable = range.ownsEmbeddings() || range.ownsHead();
        MemorySegment tokens = needsTokenTable ? tensor("embed_tokens.weight", config.vocabSize(), embed) : null;
        MemorySegment positions = null;
        Linear projectIn = null;
        if (range.ownsEmbeddings()) {
            positions = tensor("embed_positions.weight", config.maxPositions() + OptConfig.POSITION_OFFSET, hidden);
            if (config.hasProjections()) {
                projectIn = new Linear(tensor("project_in.weight", hidden, embed), null, hidden, embed);
            }
        }
        LayerNormWeights finalNorm = null;
        Linear projectOut = null;
        if (range.ownsHead()) {
            if (config.hasFinalLayerNorm()) {
                finalNorm = layerNorm("final_layer_norm", hidden);
            }
            if (config.hasProjections()) {
                projectOut = new Linear(tensor("project_out.weight", embed, hidden), null, embed, hidden);
            }
        }
        LayerWeights[] layers = new LayerWeights[withLayers ? range.count() : 0];
        for (int i = 0; i < layers.length; i++) {
            layers[i] = layer(range.first() + i);
        }
        return new OptWeights(config, range, tokens, positions, projectIn, finalNorm, projectOut, layers);
    }

    private LayerWeights layer(int index) {
        String p = "layers." + index + ".";
        int hidden = config.hiddenSize();
        int ffn = config.ffnDim();
        return new LayerWeights(
                layerNorm(p + "self_attn_layer_norm", hidden),
                linear(p + "self_attn.q_proj", hidden, hidden),
                linear(p + "self_attn.k_proj", hidden, hidden),
                linear(p + "self_attn.v_proj", hidden, hidden),
                linear(p + "self_attn.out_proj", hidden, hidden),
                layerNorm(p + "final_layer_norm", hidden),
                linear(p + "fc1", ffn, hidden),
                linear(p + "fc2", hidden, ffn));
    }

    private Linear linear(String name, int out, int in) {
        MemorySegment weight = tensor(name + ".weight", out, in);
        MemorySegment bias = config.enableBias() ? tensor(name + ".bias", out) : null;
        return new Linear(weight, bias, out, in);
    }

    private LayerNormWeights layerNorm(String name, int width) {
        return new LayerNormWeights(tensor(name + ".weight", width), tensor(name + ".bias", width), width);
    }

    private MemorySegment tensor(String shortName, long... expectedShape) {
        StoredTensor stored = checkpoint.tensor(prefix + shortName);
        if (!stored.info().hasShape(expectedShape)) {
            throw new CheckpointException(stored.file() + ": tensor '" + stored.info().name() + "' has shape "
                    + stored.info().shapeString() + " but config.json implies " + java.util.Arrays.toString(expectedShape));
        }
        DType dtype = stored.info().dtype();
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
            throw new CheckpointException(stored.file() + ": tensor '" + stored.info().name() + "' is " + dtype
                    + "; OPT weights must be F32, F16 or BF16");
        }
        return Fp32Tensors.toF32(stored.data(), dtype, stored.info().elementCount(), arena);
    }
}
