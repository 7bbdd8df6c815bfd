package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.checkpoint.HfCheckpoint;
import io.bitrelay.runtime.cuda.CudaContext;
import io.bitrelay.runtime.cuda.CudaSettings;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.kernels.AttentionKernels;
import io.bitrelay.runtime.cuda.kernels.KvCacheFormat;
import io.bitrelay.runtime.cuda.kernels.LinkCodecKernels;
import io.bitrelay.runtime.generate.SamplingRows;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.OptCheckpointLoader;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.OptWeights;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * A pipeline stage's OPT decoder layers resident on one GPU: weights uploaded once (FP16, or the W8A8 codes of
 * a quantized model), a device KV cache per {@link GpuSequence}, and a step that runs a batch of prefill
 * chunks and one-token decodes through every layer like {@link OptModel#runLayers}, the hidden states
 * arriving and leaving as host FP32 rows. All work runs on the stage's one stream; every activation buffer is
 * preallocated for {@code maxBatchTokens} rows, so a step allocates no device memory.
 *
 * <p>Decode steps (every chunk one token) replay a CUDA graph of the whole layer stack per launch
 * configuration ({@link DecodeGraphs}); prefill and mixed steps launch kernel by kernel. Graphs are on unless
 * the system property {@value #DECODE_GRAPHS_PROPERTY} is {@code false}, or {@link #useDecodeGraphs} turns them off.
 *
 * <p>Not thread-safe: one thread drives a stage (it makes the stage's context current on each call).
 */
public final class GpuStage implements AutoCloseable {
    /** System property: {@code false} runs decode steps kernel by kernel (a fallback, and the baseline to measure against). */
    public static final String DECODE_GRAPHS_PROPERTY = "bitrelay.cuda.decode-graphs";
    private final CudaContext context;
    private final OptConfig config;
    private final StageRecipe recipe;
    private final KvCacheFormat kvFormat;
    private final int maxBatchTokens;
    private final int maxPositions;
    private final StageCompute compute;
    private final List<DeviceLayer> layers;
    private final StageBuffers buffers;
    /** The final LayerNorm and LM head when this stage owns them and the GPU can run them; else null. */
    private DeviceLmHead head;
    /** The input embeddings when this stage owns them and the head too (first and last at once); else null. */
    private DeviceEmbeddings inputs;
    /** Sampling passes so far: their parity picks the half of the head's sampling buffers a pass uses. */
    private long samplingPasses;
    private final Set<GpuSequence> sequences = Collections.newSetFromMap(new IdentityHashMap<>());
    private final KvCachePool cachePool = new KvCachePool();
    private DecodeGraphs graphs;
    private LinkCodecKernels linkKernels; // made on first use: only GPU workers' links need them
    private boolean closed;
    private long stepCount;

    private interface LayerFactory {
        DeviceLayer make(int localLayer, StageCompute compute);
    }

    private GpuStage(int cudaDevice, CudaSettings settings, OptConfig config, StageRecipe recipe, KvCacheFormat kvFormat,
                     int layerCount, int maxBatchTokens, int maxPositions, LayerFactory factory) {
        checkShape(config, maxBatchTokens, maxPositions);
        this.config = config;
        this.recipe = recipe;
        this.kvFormat = kvFormat;
        this.maxBatchTokens = maxBatchTokens;
        this.maxPositions = maxPositions;
        this.context = CudaContext.open(cudaDevice);
        StageCompute createdCompute = null;
        List<DeviceLayer> createdLayers = new ArrayList<>();
        StageBuffers createdBuffers = null;
        try {
            createdCompute = new StageCompute(maxBatchTokens, settings, context.device().name());
            for (int local = 0; local < layerCount; local++) {
                createdLayers.add(factory.make(local, createdCompute));
            }
            createdBuffers = new StageBuffers(config, layerCount, recipe, maxBatchTokens, maxPositions,
                    context.device().multiprocessors(), createdCompute.stream);
        } catch (RuntimeException e) {
            createdLayers.forEach(DeviceLayer::close);
            if (createdCompute != null) {
                createdCompute.close();
            }
            context.close();
            throw e;
        }
        this.compute = createdCompute;
        this.layers = List.copyOf(createdLayers);
        this.buffers = createdBuffers;
        this.graphs = Boolean.parseBoolean(System.getProperty(DECODE_GRAPHS_PROPERTY, "true")) ? new DecodeGraphs(compute.stream)
                : null;
    }

    /**
     * Uploads {@code stageModel}'s decoder layers to cuda:{@code cudaDevice}: an FP32 model runs as FP16, a
     * model whose linears are per-token W8A8 ({@code RecipeApplier} with w8a8-smoothquant or w8a8-pertoken)
     * runs its INT8 codes. The model may be closed afterwards.
     *
     * @param maxBatchTokens rows a step may carry (sum of chunk lengths)
     * @param maxPositions   tokens a sequence's cache holds (at most the model's context)
     */
    public static GpuStage open(int cudaDevice, OptModel stageModel, int maxBatchTokens, int maxPositions) {
        return open(cudaDevice, CudaSettings.defaults(), stageModel, maxBatchTokens, maxPositions);
    }

    /** As {@link #open(int, OptModel, int, int)}, with {@code settings} (cuBLASLt, GEMM workspace and tuning). */
    public static GpuStage open(int cudaDevice, CudaSettings settings, OptModel stageModel, int maxBatchTokens,
                                int maxPositions) {
        OptConfig config = stageModel.config();
        checkServable(config, maxPositions);
        StageRecipe recipe = StageRecipe.of(stageModel.weights());
        LayerWeights[] weights = stageModel.weights().layers();
        return withHead(new GpuStage(cudaDevice, settings, config, recipe, KvCacheFormat.of(stageModel.kvPrecision()),
                weights.length, maxBatchTokens, maxPositions,
                (local, compute) -> upload(config, recipe, weights[local])), stageModel.weights());
    }

    private static DeviceLayer upload(OptConfig config, StageRecipe recipe, LayerWeights weights) {
        return recipe == StageRecipe.FP16 ? Fp16Layer.upload(config, weights) : W8A8Layer.upload(config, weights);
    }

    private static void checkServable(OptConfig config, int maxPositions) {
        if (!config.doLayerNormBefore()) {
            throw new IllegalArgumentException("the GPU stage runs pre-LayerNorm OPT; post-LayerNorm (opt-350m) is not supported");
        }
        if (maxPositions > config.maxPositions()) {
            throw new IllegalArgumentException("maxPositions " + maxPositions + " exceeds the model's context of "
                    + config.maxPositions());
        }
    }

    /** {@code stage} with the LM head of {@code weights} uploaded, when the stage owns one the GPU runs; closed if that fails. */
    private static GpuStage withHead(GpuStage stage, OptWeights weights) {
        if (DeviceLmHead.supports(weights)) {
            try {
                stage.head = DeviceLmHead.upload(stage.config, weights, stage.maxBatchTokens);
                if (DeviceEmbeddings.supports(weights)) {
                    stage.inputs = DeviceEmbeddings.upload(stage.config, weights, stage.maxBatchTokens);
                }
            } catch (RuntimeException e) {
                stage.close();
                throw e;
            }
        }
        return stage;
    }

    /** Where a streamed stage's decoder layers come from, one at a time; a layer's tensors live in {@code arena}. */
    @FunctionalInterface
    public interface LayerSource {
        LayerWeights layer(int localLayer, Arena arena);

        /** The FP32 layers of {@code range}, each read alone from {@code checkpoint}. */
        static LayerSource checkpoint(HfCheckpoint checkpoint, OptConfig config, LayerRange range) {
            return (local, arena) -> OptCheckpointLoader.loadLayer(checkpoint, config, range.first() + local, arena);
        }
    }

    /**
     * The stage of {@code host}'s range with its decoder layers taken from {@code layers} and uploaded one at a
     * time — each layer's host copy is freed before the next is made, so the host never holds the stage (48 OPT-175B
     * layers are 350 GB of FP32) — and the LM head from {@code host} when it owns one. Every layer must be of
     * {@code recipe} (FP32 linears for FP16, per-token W8A8 for W8A8); one that is not is refused by its index.
     *
     * @param host the stage's embeddings and head without layers ({@link OptModel#loadWithoutLayers})
     */
    public static GpuStage stream(int cudaDevice, OptModel host, StageRecipe recipe, LayerSource layers, int maxBatchTokens,
                                  int maxPositions) {
        return stream(cudaDevice, CudaSettings.defaults(), host, recipe, layers, maxBatchTokens, maxPositions);
    }

    /** As {@link #stream(int, OptModel, StageRecipe, LayerSource, int, int)}, with {@code settings}. */
    public static GpuStage stream(int cudaDevice, CudaSettings settings, OptModel host, StageRecipe recipe,
                                  LayerSource layers, int maxBatchTokens, int maxPositions) {
        OptConfig config = host.config();
        checkServable(config, maxPositions);
        LayerRange range = host.range();
        return withHead(new GpuStage(cudaDevice, settings, config, recipe, KvCacheFormat.of(host.kvPrecision()),
                range.count(), maxBatchTokens, maxPositions,
                (local, compute) -> {
                    try (Arena layerArena = Arena.ofShared()) {
                        LayerWeights w = layers.layer(local, layerArena);
                        StageRecipe found = StageRecipe.ofLayer(w, range.first() + local);
                        if (found != recipe) {
                            throw new IllegalArgumentException("layer " + (range.first() + local) + " is " + found.label()
                                    + ", the streamed stage " + recipe.label());
                        }
                        return upload(config, recipe, w);
                    }
                }), host.weights());
    }

    /**
     * {@code layerCount} layers of {@code config}'s shape with seeded random weights generated on the device
     * (nothing of their size is built on the host): for benchmarks and memory measurements.
     */
    public static GpuStage random(int cudaDevice, OptConfig config, StageRecipe recipe, int layerCount, int maxBatchTokens,
                                  int maxPositions, long seed) {
        return random(cudaDevice, CudaSettings.defaults(), config, recipe, KvCacheFormat.FP16, layerCount, maxBatchTokens,
                maxPositions, seed);
    }

    /** As {@link #random(int, OptConfig, StageRecipe, int, int, int, long)}, with {@code settings} and a KV cache format. */
    public static GpuStage random(int cudaDevice, CudaSettings settings, OptConfig config, StageRecipe recipe,
                                  KvCacheFormat kvFormat, int layerCount, int maxBatchTokens, int maxPositions, long seed) {
        if (layerCount <= 0) {
            throw new IllegalArgumentException("layerCount must be positive, got " + layerCount);
        }
        return new GpuStage(cudaDevice, settings, config, recipe, kvFormat, layerCount, maxBatchTokens, maxPositions,
                (local, compute) -> recipe == StageRecipe.FP16 ? Fp16Layer.random(config, compute, seed + local)
                        : W8A8Layer.random(config, compute, seed + local));
    }

    public OptConfig config() {
        return config;
    }

    public StageRecipe recipe() {
        return recipe;
    }

    /** How this stage's sequences store keys and values. */
    public KvCacheFormat kvFormat() {
        return kvFormat;
    }

    public int layerCount() {
        return layers.size();
    }

    public CudaContext context() {
        return context;
    }

    /** The stage's stream (for CUDA-event timing around {@link #enqueueLayers}). */
    public CudaStream stream() {
        return compute.stream;
    }

    /** Device bytes of every layer's weights (and of the LM head, when the stage has it). */
    public long weightBytes() {
        return layers.stream().mapToLong(DeviceLayer::deviceBytes).sum() + (head == null ? 0 : head.deviceBytes())
                + (inputs == null ? 0 : inputs.deviceBytes());
    }

    /** Whether {@link #logits} runs here: the stage owns the LM head (tied, with a final LayerNorm, no projection). */
    public boolean hasLmHead() {
        return head != null;
    }

    /**
     * FP16 logits (widened) of {@code rows} of the residual stream — indices of {@link #hiddenBuffer()}'s rows — after
     * the queued layers: final LayerNorm and LM head on the device, one row of logits per index back to the host.
     */
    public float[][] logits(int[] rows) {
        requireHead();
        context.makeCurrent();
        return head.logits(compute, buffers.hidden, rows, maxBatchTokens);
    }

    /**
     * The next token of each of {@code rows} (indices of {@link #hiddenBuffer()}'s rows; the first
     * {@code params.count()} of them) after the queued layers, chosen on the device as {@code params} says (greedy,
     * or temperature / top-k / top-p with the row's seed and counter; as
     * {@link io.bitrelay.runtime.generate.DeviceSamplingReference} picks it): only the tokens come back.
     * Allocates nothing per call.
     */
    public void sample(int[] rows, SamplingRows params, int[] tokensOut) {
        sample(rows, params, tokensOut, null);
    }

    /** As {@link #sample(int[], SamplingRows, int[])}, also writing each token's log-softmax (raw logits) to {@code logprobsOut}. */
    public void sample(int[] rows, SamplingRows params, int[] tokensOut, float[] logprobsOut) {
        requireHead();
        context.makeCurrent();
        head.sample(compute, buffers.hidden, rows, maxBatchTokens, params, nextSamplingHalf(), tokensOut, logprobsOut);
    }

    /**
     * Tokens a sampling pass queued by {@link #sampleAhead} left on the device: read there by the next step's
     * embeddings ({@link #embed}), and on the host once {@link #awaitSampled awaited}.
     */
    public static final class SampledTokens {
        private final DeviceLmHead.Pass pass;

        private SampledTokens(DeviceLmHead.Pass pass) {
            this.pass = pass;
        }

        /** Tokens in the pass, one per sampled row. */
        public int count() {
            return pass.count();
        }
    }

    /** Rows one {@link #sampleAhead} pass takes at most. */
    public int maxSampledAhead() {
        requireHead();
        return head.rowsPerPass();
    }

    /**
     * As {@link #sample(int[], SamplingRows, int[])}, but returns as soon as the pass is queued: the tokens stay on the
     * device for the next step ({@link #embed}) and come to the host with {@link #awaitSampled}. At most
     * {@link #maxSampledAhead()} rows; the pass's buffers stay valid until the pass after next, so await each pass
     * before queuing two more.
     */
    public SampledTokens sampleAhead(int[] rows, SamplingRows params) {
        requireHead();
        context.makeCurrent();
        return new SampledTokens(head.queueSample(compute, buffers.hidden, rows, maxBatchTokens, params, nextSamplingHalf()));
    }

    /** Waits for {@code sampled}'s tokens (and only them: later queued work goes on) and copies them to {@code tokensOut}. */
    public void awaitSampled(SampledTokens sampled, int[] tokensOut) {
        requireHead();
        if (tokensOut.length < sampled.count()) {
            throw new IllegalArgumentException("room for " + tokensOut.length + " tokens, the pass sampled " + sampled.count());
        }
        context.makeCurrent();
        head.collect(sampled.pass, tokensOut);
    }

    private int nextSamplingHalf() {
        return (int) (samplingPasses++ & 1);
    }

    private void requireHead() {
        live();
        if (head == null) {
            throw new IllegalStateException("this GPU stage has no LM head (not the last stage, or an output projection)");
        }
    }

    /** Whether {@link #embed} runs here: the stage owns its input embeddings (with no project_in) and the LM head. */
    public boolean embedsOnDevice() {
        return inputs != null;
    }

    /**
     * Queues the input embeddings of a step's {@code rows} rows onto the residual stream (what {@link #loadHidden}
     * does with host rows): row r is token {@code tokens[r]}, or, where {@code fed[r] >= 0}, the {@code fed[r]}-th
     * token {@code previous} sampled, still on the device; at position {@code positions[r]}. Token rows come from the
     * FP16 table the LM head shares (as an FP16 model's embedding layer), positions in FP32.
     *
     * @param previous the pass the fed rows read; null when no row is fed
     */
    public void embed(int rows, int[] tokens, int[] fed, int[] positions, SampledTokens previous) {
        live();
        if (inputs == null) {
            throw new IllegalStateException("this GPU stage does not embed its inputs on the device");
        }
        if (tokens.length < rows || fed.length < rows || positions.length < rows) {
            throw new IllegalArgumentException("row tables of " + tokens.length + "/" + fed.length + "/" + positions.length
                    + " entries for " + rows + " rows");
        }
        for (int r = 0; r < rows; r++) {
            if (fed[r] >= 0 && (previous == null || fed[r] >= previous.count())) {
                throw new IllegalArgumentException("row " + r + " is fed sampled token " + fed[r] + " of a pass of "
                        + (previous == null ? "none" : previous.count()));
            }
        }
        context.makeCurrent();
        inputs.queue(compute, head.tokenEmbeddings(), buffers.hidden, rows, tokens, fed, positions,
                previous == null ? 0 : head.tokensAddress(previous.pass));
    }

    /** Device bytes of the preallocated step buffers. */
    public long activationBytes() {
        return buffers.deviceBytes();
    }

    /** Turns decode-step CUDA graphs on (captured anew as steps need them) or off (the captured ones are freed). */
    public void useDecodeGraphs(boolean on) {
        live();
        context.makeCurrent();
        if (on && graphs == null) {
            graphs = new DecodeGraphs(compute.stream);
        } else if (!on && graphs != null) {
            compute.stream.synchronize();
            graphs.close();
            graphs = null;
        }
    }

    /** How decode steps run, for logs and benchmarks: "off", "on (N captured, M replays)" or "failed: reason". */
    public String decodeGraphsStatus() {
        if (graphs == null) {
            return "off";
        }
        return graphs.disabledReason() != null ? "failed: " + graphs.disabledReason()
                : "on (" + graphs.captures() + " captured, " + graphs.replays() + " replays)";
    }

    /**
     * What serving cost beside the kernels, for the log a stage leaves when it closes: decode graph replays, eager
     * steps, captures and evictions, and how often a sequence found a released KV cache to reuse.
     */
    public String servingCosts() {
        String graphPart = graphs == null ? "decode graphs off"
                : graphs.disabledReason() != null ? "decode graphs failed: " + graphs.disabledReason()
                : "decode graphs: " + graphs.replays() + " replays, " + graphs.costs();
        return graphPart + "; KV caches: " + cachePool.reused() + " reused, " + cachePool.allocated() + " allocated, "
                + (cachePool.cachedBytes() >> 20) + " MiB held for reuse";
    }

    /** Decode steps replayed from a graph so far (0 while graphs are off or failed). */
    long decodeGraphReplays() {
        return graphs == null || graphs.disabledReason() != null ? 0 : graphs.replays();
    }

    /** Decode graphs captured so far, evicted ones included (0 while graphs are off or failed). */
    long decodeGraphCaptures() {
        return graphs == null || graphs.disabledReason() != null ? 0 : graphs.captures();
    }

    /** Tokens a sequence's cache holds at most (the stage's context). */
    public int maxPositions() {
        return maxPositions;
    }

    /** Device bytes of one sequence's cache at the stage's full context ({@link #newSequence()}). */
    public long sequenceBytes() {
        return 2L * layers.size() * kvFormat.blockBytes(maxPositions, config.hiddenSize(), config.numHeads());
    }

    /** A new sequence with an empty device cache of {@code maxPositions} tokens per layer. */
    public GpuSequence newSequence() {
        return newSequence(maxPositions);
    }

    /** A new sequence whose cache holds {@code capacity} tokens (at most the stage's maxPositions): short requests, benchmarks. */
    public GpuSequence newSequence(int capacity) {
        if (capacity <= 0 || capacity > maxPositions) {
            throw new IllegalArgumentException("sequence capacity " + capacity + " outside 1.." + maxPositions);
        }
        live();
        context.makeCurrent();
        GpuSequence sequence = new GpuSequence(this, cachePool, kvFormat, layers.size(), config.hiddenSize(), config.numHeads(), capacity);
        sequences.add(sequence);
        return sequence;
    }

    /** Sequences that started in a released cache instead of a new allocation ({@link KvCachePool}). */
    public long reusedCaches() {
        return cachePool.reused();
    }

    /** Ends {@code sequence} (same as closing it): its cache goes to the stage's pool for the next sequence of its size. */
    public void release(GpuSequence sequence) {
        if (sequence.owner() != this) {
            throw new IllegalArgumentException("the sequence belongs to another GPU stage");
        }
        context.makeCurrent();
        sequence.close();
    }

    void forget(GpuSequence sequence, DeviceBuffer cache) {
        sequences.remove(sequence);
        if (closed) {
            cache.close();
        } else {
            cachePool.give(cache);
        }
    }

    /**
     * Tunes the GEMMs a step of {@code rows} rows will use (each bucketed M once), by running a throw-away
     * forward pass on scratch sequences; call at start-up so that serving never waits for tuning.
     */
    public void prepare(int... rowCounts) {
        for (int rows : rowCounts) {
            try (GpuSequence scratch = newSequence()) {
                enqueueLayers(List.of(new GpuChunk(scratch, Math.min(rows, maxPositions))));
                compute.stream.synchronize();
            }
        }
    }

    /**
     * Tunes every GEMM a serving step can use — each row bucket of the layers up to the stage's batch tokens, and
     * of the LM head up to a pass — and writes the tuning cache, so no request waits for tuning. Before, only
     * batch 1 was tuned here: a serving run then tuned each new decode batch size and prompt chunk bucket on the
     * step path, milliseconds to seconds each (measured as 2.2 ms a step of host "layers" time at N = 64).
     */
    public void prepareServing() {
        live();
        context.makeCurrent();
        int[] buckets = compute.gemmBuckets(maxBatchTokens);
        prepare(buckets);
        if (head != null) {
            for (int bucket : buckets) {
                if (bucket <= head.rowsPerPass()) {
                    head.prepare(compute, bucket);
                }
            }
        }
        compute.saveTuningCache();
    }

    /**
     * One step: {@code hostHidden} (rows, hidden) FP32, rows in chunk order, is transformed in place by every
     * layer; each chunk's keys and values are appended to its sequence's cache, whose length then advances.
     */
    public void runLayers(List<GpuChunk> chunks, MemorySegment hostHidden) {
        int rows = totalRows(chunks);
        loadHidden(hostHidden, rows);
        enqueueLayers(chunks);
        storeHidden(hostHidden, rows);
    }

    /** Queues the copy of (rows, hidden) FP32 host rows onto the device's residual stream. */
    public void loadHidden(MemorySegment hostHidden, int rows) {
        long bytes = hiddenBytes(hostHidden, rows);
        live();
        context.makeCurrent();
        compute.stream.synchronize(); // the staging may still feed the previous step's copy
        MemorySegment.copy(hostHidden, 0, buffers.staging.segment(), 0, bytes);
        buffers.hidden.copyFromHostAsync(buffers.staging, 0, 0, bytes, compute.stream);
    }

    /** Copies the device's (rows, hidden) FP32 residual stream to {@code hostHidden} once the queued work is done. */
    public void storeHidden(MemorySegment hostHidden, int rows) {
        long bytes = hiddenBytes(hostHidden, rows);
        live();
        context.makeCurrent();
        buffers.hidden.copyToHostAsync(buffers.staging, 0, 0, bytes, compute.stream);
        compute.stream.synchronize();
        MemorySegment.copy(buffers.staging.segment(), 0, hostHidden, 0, bytes);
    }

    private long hiddenBytes(MemorySegment hostHidden, int rows) {
        if (rows < 0 || rows > maxBatchTokens) {
            throw new IllegalArgumentException("a step of " + rows + " rows; the stage holds 0.." + maxBatchTokens);
        }
        long bytes = (long) rows * config.hiddenSize() * Float.BYTES;
        if (hostHidden.byteSize() < bytes) {
            throw new IllegalArgumentException("host hidden states hold " + hostHidden.byteSize() + " bytes, the step's "
                    + rows + " rows need " + bytes);
        }
        return bytes;
    }

    /**
     * The residual stream, (maxBatchTokens, hidden) FP32 on the device: what the layers read and write in place,
     * so a link decoder may write a step's rows into it and an encoder read them, on {@link #stream()}.
     */
    public DeviceBuffer hiddenBuffer() {
        live();
        return buffers.hidden;
    }

    /** Rows one step may carry. */
    public int maxBatchTokens() {
        return maxBatchTokens;
    }

    /** The link codec kernels of this stage's module, for encoders and decoders in its context. */
    public LinkCodecKernels linkKernels() {
        live();
        if (linkKernels == null) {
            context.makeCurrent();
            linkKernels = new LinkCodecKernels(compute.kernels, context.device());
        }
        return linkKernels;
    }

    /**
     * Queues every layer over the hidden states already on the device (what {@link #runLayers} does between
     * its copies) and advances the caches; returns before the GPU is done. For benchmarks.
     */
    public void enqueueLayers(List<GpuChunk> chunks) {
        live();
        context.makeCurrent();
        AttentionStep step = describe(chunks);
        if (graphs != null) {
            graphs.run(step, () -> forwardAll(step));
        } else {
            forwardAll(step);
        }
        for (GpuChunk chunk : chunks) {
            chunk.sequence().advance(chunk.tokens());
        }
    }

    private void forwardAll(AttentionStep step) {
        for (int local = 0; local < layers.size(); local++) {
            layers.get(local).forward(compute, buffers, step, local, local + 1 < layers.size() ? layers.get(local + 1) : null);
        }
    }

    /** Writes random keys and values into the first {@code tokens} positions of {@code sequence} (benchmark context). */
    public void fillRandomContext(GpuSequence sequence, int tokens, long seed) {
        if (tokens < 0 || tokens > sequence.capacity()) {
            throw new IllegalArgumentException("context of " + tokens + " tokens for a cache of " + sequence.capacity());
        }
        context.makeCurrent();
        if (kvFormat == KvCacheFormat.FP16) {
            compute.randomFill.fp16(sequence.base(), sequence.bytes() / Short.BYTES, seed, 1f, compute.stream);
        } else {
            // Random codes, then every (token, head) group's {scale, minimum} = {1/64, 1/64}: finite values in (0, 4].
            compute.randomFill.int8(sequence.base(), sequence.bytes(), seed, compute.stream);
            long groups = (long) sequence.capacity() * config.numHeads();
            for (int block = 0; block < 2 * sequence.layers(); block++) {
                sequence.buffer().fillWords(block * sequence.blockBytes() + sequence.paramsOffset(),
                        Float.floatToRawIntBits(1f / 64), 2 * groups, compute.stream);
            }
        }
        compute.stream.synchronize();
        sequence.setLength(tokens);
    }

    /** Writes the step's AttentionSeq records (decode sequences first) and queues their upload. */
    private AttentionStep describe(List<GpuChunk> chunks) {
        int rows = totalRows(chunks);
        List<Integer> decode = new ArrayList<>();
        List<Integer> prefill = new ArrayList<>();
        Set<GpuSequence> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        int maxNew = 0;
        int maxContext = 0;
        for (int i = 0; i < chunks.size(); i++) {
            GpuChunk chunk = chunks.get(i);
            GpuSequence sequence = chunk.sequence();
            if (sequence.owner() != this || !sequence.isOpen()) {
                throw new IllegalArgumentException("chunk " + i + ": the sequence is released or belongs to another stage");
            }
            if (!seen.add(sequence)) {
                throw new IllegalArgumentException("chunk " + i + ": a sequence appears twice in one step");
            }
            if (sequence.length() + chunk.tokens() > sequence.capacity()) {
                throw new IllegalArgumentException("chunk " + i + ": " + sequence.length() + " + " + chunk.tokens()
                        + " tokens exceed the sequence's cache of " + sequence.capacity());
            }
            (chunk.tokens() == 1 ? decode : prefill).add(i);
            maxNew = Math.max(maxNew, chunk.tokens());
            if (chunk.tokens() == 1) {
                maxContext = Math.max(maxContext, sequence.length() + 1);
            }
        }
        int[] rowStarts = new int[chunks.size()];
        for (int i = 1; i < chunks.size(); i++) {
            rowStarts[i] = rowStarts[i - 1] + chunks.get(i - 1).tokens();
        }
        int sequences = chunks.size();
        // Two host halves, alternating: the half written now was last uploaded two steps ago; its event says
        // when that copy left it, so back-to-back enqueueLayers calls never wait for the GPU to drain.
        int half = (int) (stepCount++ & 1);
        buffers.descriptorUploaded[half].synchronize();
        long halfOffset = half * buffers.descriptorHalfBytes;
        MemorySegment records = buffers.descriptorStaging.segment().asSlice(halfOffset, buffers.descriptorHalfBytes);
        for (int local = 0; local < layers.size(); local++) {
            int slot = 0;
            for (List<Integer> group : List.of(decode, prefill)) {
                for (int i : group) {
                    GpuChunk chunk = chunks.get(i);
                    long at = ((long) local * sequences + slot++) * AttentionKernels.DESCRIPTOR_BYTES;
                    records.set(ValueLayout.JAVA_LONG, at + AttentionKernels.DESCRIPTOR_K_OFFSET, chunk.sequence().keys(local));
                    records.set(ValueLayout.JAVA_LONG, at + AttentionKernels.DESCRIPTOR_V_OFFSET, chunk.sequence().values(local));
                    records.set(ValueLayout.JAVA_INT, at + AttentionKernels.DESCRIPTOR_ROW_START_OFFSET, rowStarts[i]);
                    records.set(ValueLayout.JAVA_INT, at + AttentionKernels.DESCRIPTOR_NEW_TOKENS_OFFSET, chunk.tokens());
                    records.set(ValueLayout.JAVA_INT, at + AttentionKernels.DESCRIPTOR_PAST_LENGTH_OFFSET, chunk.sequence().length());
                    records.set(ValueLayout.JAVA_INT, at + AttentionKernels.DESCRIPTOR_CAPACITY_OFFSET, chunk.sequence().capacity());
                }
            }
        }
        long recordBytes = (long) layers.size() * sequences * AttentionKernels.DESCRIPTOR_BYTES;
        buffers.descriptors.copyFromHostAsync(buffers.descriptorStaging, halfOffset, 0, recordBytes, compute.stream);
        buffers.descriptorUploaded[half].record(compute.stream);
        AttentionKernels.DecodeSplit split = decode.isEmpty() ? null
                : AttentionKernels.decodeSplit(decode.size(), config.numHeads(), maxContext, context.device().multiprocessors());
        return new AttentionStep(rows, decode.size(), prefill.size(), maxNew, split, buffers.descriptors.address(), kvFormat);
    }

    private int totalRows(List<GpuChunk> chunks) {
        if (chunks.isEmpty()) {
            throw new IllegalArgumentException("a step needs at least one chunk");
        }
        int rows = 0;
        for (GpuChunk chunk : chunks) {
            rows += chunk.tokens();
        }
        if (rows > maxBatchTokens) {
            throw new IllegalArgumentException("step of " + rows + " rows exceeds the stage's max batch tokens " + maxBatchTokens);
        }
        return rows;
    }

    private static void checkShape(OptConfig config, int maxBatchTokens, int maxPositions) {
        if (!AttentionKernels.supportsHeadDim(config.headDim())) {
            throw new IllegalArgumentException("the GPU stage's attention kernels take head dim 64 or 128, the model has "
                    + config.headDim());
        }
        if (config.hiddenSize() % 8 != 0 || config.ffnDim() % 8 != 0) {
            throw new IllegalArgumentException("the GPU stage needs hidden and ffn sizes that are multiples of 8, got "
                    + config.hiddenSize() + " and " + config.ffnDim());
        }
        if (maxBatchTokens <= 0 || maxPositions <= 0) {
            throw new IllegalArgumentException("maxBatchTokens and maxPositions must be positive, got " + maxBatchTokens
                    + " and " + maxPositions);
        }
    }

    private void live() {
        if (closed) {
            throw new IllegalStateException("GPU stage is closed");
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        context.makeCurrent();
        compute.stream.synchronize();
        for (GpuSequence sequence : List.copyOf(sequences)) {
            sequence.close();
        }
        cachePool.close();
        if (graphs != null) {
            graphs.close();
        }
        buffers.close();
        layers.forEach(DeviceLayer::close);
        if (inputs != null) {
            inputs.close();
        }
        if (head != null) {
            head.close();
        }
        compute.close();
        context.close();
    }
}
