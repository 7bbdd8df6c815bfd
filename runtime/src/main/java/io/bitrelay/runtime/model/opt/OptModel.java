package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.checkpoint.HfCheckpoint;
import io.bitrelay.runtime.ops.cpu.VectorMath;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;

/**
 * OPT on the CPU in FP32, exactly as transformers' OPTForCausalLM computes it, for the layers one stage
 * owns (all of them in a single process). A forward step takes chunks of several sequences at once: the
 * linear layers see all their rows together, attention runs per sequence against its own cache.
 */
public final class OptModel implements AutoCloseable {
    private final HfCheckpoint checkpoint; // null for a derived model: the base model owns it
    private final Arena weightsArena;      // what this model allocated (widened or derived tensors); closed with it
    private final OptWeights weights;
    private final KvPrecision kvPrecision; // what newCache() stores keys and values as

    private OptModel(HfCheckpoint checkpoint, Arena weightsArena, OptWeights weights, KvPrecision kvPrecision) {
        this.checkpoint = checkpoint;
        this.weightsArena = weightsArena;
        this.weights = weights;
        this.kvPrecision = kvPrecision;
    }

    public static OptModel load(Path checkpointDirectory) {
        return load(checkpointDirectory, null);
    }

    /** @param range the stage's layers, or null for the whole model */
    public static OptModel load(Path checkpointDirectory, LayerRange range) {
        HfCheckpoint checkpoint = HfCheckpoint.open(checkpointDirectory);
        Arena arena = Arena.ofShared();
        try {
            OptConfig config = OptConfig.read(checkpoint.configFile());
            LayerRange layers = range == null ? LayerRange.all(config.numLayers()) : range;
            return new OptModel(checkpoint, arena, OptCheckpointLoader.load(checkpoint, config, layers, arena), KvPrecision.FP32);
        } catch (RuntimeException e) {
            arena.close();
            checkpoint.close();
            throw e;
        }
    }

    /**
     * The stage's embeddings and head (per {@code range}'s ownership) without its decoder layers: what a GPU worker
     * keeps on the host when its layers stream from the checkpoint to the device one at a time
     * ({@code GpuStage.stream}). It embeds tokens and computes logits; it runs no layers ({@code weights().layers()}
     * is empty).
     */
    public static OptModel loadWithoutLayers(Path checkpointDirectory, LayerRange range) {
        HfCheckpoint checkpoint = HfCheckpoint.open(checkpointDirectory);
        Arena arena = Arena.ofShared();
        try {
            OptConfig config = OptConfig.read(checkpoint.configFile());
            return new OptModel(checkpoint, arena, OptCheckpointLoader.loadWithoutLayers(checkpoint, config, range, arena),
                    KvPrecision.FP32);
        } catch (RuntimeException e) {
            arena.close();
            checkpoint.close();
            throw e;
        }
    }

    public OptConfig config() {
        return weights.config();
    }

    public LayerRange range() {
        return weights.range();
    }

    /** The weights this model computes with (FP32 as loaded, or as a recipe rewrote them). */
    public OptWeights weights() {
        return weights;
    }

    /**
     * A model computing with {@code newWeights} (same shape and layer range), e.g. quantized layers built from
     * this model's. The new weights may keep referring to this model's tensors (embeddings, mapped
     * checkpoint data), so this model must stay open while the derived one is used; closing the derived
     * model frees {@code newWeightsArena} (what the new tensors were allocated in; may be null) and nothing
     * of this one. The derived model keeps this model's {@link #kvPrecision()}.
     */
    public OptModel derive(OptWeights newWeights, Arena newWeightsArena) {
        if (!newWeights.config().equals(config()) || !newWeights.range().equals(range())) {
            throw new IllegalArgumentException("derived weights must keep the model's config and " + range());
        }
        return new OptModel(null, newWeightsArena, newWeights, kvPrecision);
    }

    /**
     * This model, computing with the same weights, whose {@link #newCache()} stores keys and values as
     * {@code precision}. It owns nothing: closing it frees nothing, and this model must stay open while it
     * is used (as for {@link #derive}). Everything that makes caches through the model (generation,
     * perplexity, a stage engine) then runs attention over caches of that precision.
     */
    public OptModel withKvPrecision(KvPrecision precision) {
        return new OptModel(null, null, weights, precision);
    }

    /**
     * Decoder layer {@code local} of this stage on its own: a one-layer stage (no embeddings, no head) sharing
     * this model's tensors and KV precision. It owns nothing; this model must stay open while it is used. For
     * work done one layer at a time (GPTQ's layer-by-layer pass).
     */
    public OptModel layerSlice(int local) {
        LayerWeights[] layers = weights.layers();
        if (local < 0 || local >= layers.length) {
            throw new IllegalArgumentException("layer " + local + " of a stage of " + layers.length);
        }
        int first = weights.range().first() + local;
        OptWeights slice = new OptWeights(config(), new LayerRange(first, first + 1, weights.range().totalLayers()),
                null, null, null, null, null, new LayerWeights[] {layers[local]});
        return new OptModel(null, null, slice, kvPrecision);
    }

    /** What {@link #newCache()} stores keys and values as; FP32 unless {@link #withKvPrecision} said otherwise. */
    public KvPrecision kvPrecision() {
        return kvPrecision;
    }

    public KvCache newCache() {
        OptConfig config = config();
        return new KvCache(weights.layers().length, config.numHeads(), config.headDim(), config.maxPositions(), kvPrecision);
    }

    /** Runs the whole model (this stage must own all layers) and returns logits of each chunk's last token, or of every token. */
    public float[][] forward(List<SequenceChunk> chunks, boolean everyPosition) {
        try (Arena step = Arena.ofShared()) {
            int rows = totalRows(chunks);
            MemorySegment hidden = embed(chunks, step);
            runLayers(chunks, hidden, step);
            int[] wanted = everyPosition ? allRows(rows) : lastRows(chunks);
            return logits(hidden, wanted, step);
        }
    }

    /** First stage: token + position embeddings (and project_in), (rows, hidden); positions follow each chunk's cache. */
    public MemorySegment embed(List<SequenceChunk> chunks, Arena step) {
        List<int[]> tokens = new java.util.ArrayList<>(chunks.size());
        int[] starts = new int[chunks.size()];
        for (int i = 0; i < chunks.size(); i++) {
            tokens.add(chunks.get(i).tokens());
            starts[i] = chunks.get(i).cache().length();
        }
        return embed(tokens, starts, step);
    }

    /**
     * First stage: token + position embeddings (and project_in) of each sequence's tokens, the first at position
     * {@code startPositions[i]}: for stages whose KV caches live elsewhere (on a GPU).
     */
    public MemorySegment embed(List<int[]> chunkTokens, int[] startPositions, Arena step) {
        OptConfig config = config();
        if (startPositions.length != chunkTokens.size()) {
            throw new IllegalArgumentException(chunkTokens.size() + " chunks but " + startPositions.length + " start positions");
        }
        if (!weights.range().ownsEmbeddings()) {
            throw new IllegalStateException("this stage (" + weights.range() + ") does not own the embeddings");
        }
        int rows = 0;
        for (int[] chunk : chunkTokens) {
            rows += chunk.length;
        }
        int embedDim = config.wordEmbedProjDim();
        int hidden = config.hiddenSize();
        MemorySegment tokens = step.allocate((long) rows * embedDim * Float.BYTES, 64);
        int row = 0;
        for (int[] chunk : chunkTokens) {
            for (int token : chunk) {
                if (token < 0 || token >= config.vocabSize()) {
                    throw new IllegalArgumentException("token id " + token + " is outside the vocabulary of " + config.vocabSize());
                }
                MemorySegment.copy(weights.tokenEmbeddings(), (long) token * embedDim * Float.BYTES,
                        tokens, (long) row * embedDim * Float.BYTES, (long) embedDim * Float.BYTES);
                row++;
            }
        }
        MemorySegment out = tokens;
        if (weights.projectIn() != null) {
            out = step.allocate((long) rows * hidden * Float.BYTES, 64);
            weights.projectIn().apply(tokens, rows, out);
        }
        row = 0;
        for (int c = 0; c < chunkTokens.size(); c++) {
            int start = startPositions[c];
            int length = chunkTokens.get(c).length;
            if (start < 0 || start + length > config.maxPositions()) {
                throw new IllegalArgumentException("sequence of " + (start + length)
                        + " tokens exceeds the model's context of " + config.maxPositions());
            }
            for (int i = 0; i < length; i++) {
                long position = start + i + OptConfig.POSITION_OFFSET;
                VectorMath.axpy(1f, weights.positionEmbeddings(), position * hidden, out, (long) row * hidden, hidden);
                row++;
            }
        }
        return out;
    }

    /** Runs this stage's decoder layers over {@code hidden} (rows, hidden) in place, then advances each cache. */
    public void runLayers(List<SequenceChunk> chunks, MemorySegment hidden, Arena step) {
        runLayers(chunks, hidden, step, null);
    }

    /**
     * As {@link #runLayers(List, MemorySegment, Arena)}, showing {@code observer} the activations at every
     * {@link ActivationSite} of every layer, and the hidden state leaving the stage: one call per chunk (sequence),
     * whatever the step holds ({@link PerChunkObserver}).
     *
     * @param observer null on the serving path
     */
    public void runLayers(List<SequenceChunk> chunks, MemorySegment hidden, Arena step, ActivationObserver observer) {
        ActivationObserver perChunk = PerChunkObserver.of(observer, chunks);
        int rows = totalRows(chunks);
        for (SequenceChunk chunk : chunks) {
            chunk.cache().reserve(chunk.length());
        }
        StepBuffers buffers = new StepBuffers(step, rows, config());
        LayerWeights[] layers = weights.layers();
        int first = weights.range().first();
        for (int local = 0; local < layers.length; local++) {
            DecoderLayer.forward(config(), layers[local], first + local, local, chunks, hidden, rows, buffers, perChunk);
        }
        if (layers.length > 0) {
            DecoderLayer.observe(perChunk, weights.range().end() - 1, ActivationSite.STAGE_OUTPUT, hidden, rows,
                    config().hiddenSize());
        }
        for (SequenceChunk chunk : chunks) {
            chunk.cache().advance(chunk.length());
        }
    }

    /** Last stage: final LayerNorm, project_out and the tied LM head for the selected rows of {@code hidden}. */
    public float[][] logits(MemorySegment hidden, int[] rows, Arena step) {
        OptConfig config = config();
        if (!weights.range().ownsHead()) {
            throw new IllegalStateException("this stage (" + weights.range() + ") does not own the LM head");
        }
        int width = config.hiddenSize();
        long rowBytes = (long) width * Float.BYTES;
        MemorySegment selected = step.allocate(rows.length * rowBytes, 64);
        for (int i = 0; i < rows.length; i++) {
            MemorySegment.copy(hidden, rows[i] * rowBytes, selected, i * rowBytes, rowBytes);
        }
        if (weights.finalLayerNorm() != null) {
            weights.finalLayerNorm().apply(selected, selected, rows.length);
        }
        MemorySegment head = selected;
        if (weights.projectOut() != null) {
            head = step.allocate((long) rows.length * config.wordEmbedProjDim() * Float.BYTES, 64);
            weights.projectOut().apply(selected, rows.length, head);
        }
        int vocab = config.vocabSize();
        MemorySegment logits = step.allocate((long) rows.length * vocab * Float.BYTES, 64);
        new Linear(weights.tokenEmbeddings(), null, vocab, config.wordEmbedProjDim()).apply(head, rows.length, logits);
        float[][] out = new float[rows.length][vocab];
        for (int i = 0; i < rows.length; i++) {
            MemorySegment.copy(logits, ValueLayout.JAVA_FLOAT, (long) i * vocab * Float.BYTES, out[i], 0, vocab);
        }
        return out;
    }

    static int totalRows(List<SequenceChunk> chunks) {
        int rows = 0;
        for (SequenceChunk chunk : chunks) {
            rows += chunk.length();
        }
        return rows;
    }

    private static int[] allRows(int rows) {
        int[] all = new int[rows];
        for (int i = 0; i < rows; i++) {
            all[i] = i;
        }
        return all;
    }

    private static int[] lastRows(List<SequenceChunk> chunks) {
        int[] last = new int[chunks.size()];
        int row = 0;
        for (int i = 0; i < chunks.size(); i++) {
            row += chunks.get(i).length();
            last[i] = row - 1;
        }
        return last;
    }

    @Override
    public void close() {
        if (weightsArena != null) {
            weightsArena.close();
        }
        if (checkpoint != null) {
            checkpoint.close();
        }
    }
}
