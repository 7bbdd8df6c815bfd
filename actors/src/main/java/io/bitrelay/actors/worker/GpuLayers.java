package io.bitrelay.actors.worker;

import io.bitrelay.runtime.cuda.CudaDevice;
import io.bitrelay.runtime.cuda.CudaSettings;
import io.bitrelay.runtime.cuda.PinnedHostBuffer;
import io.bitrelay.runtime.cuda.link.GpuFrameCodecs;
import io.bitrelay.runtime.cuda.stage.GpuChunk;
import io.bitrelay.runtime.cuda.stage.GpuSequence;
import io.bitrelay.runtime.cuda.stage.GpuStage;
import io.bitrelay.runtime.cuda.stage.StageRecipe;
import io.bitrelay.runtime.generate.SamplingRows;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A stage's decoder layers on its GPU: the {@link GpuStage} built from the model the stage serves, one device
 * KV cache per sequence id, the stage's link codecs on the device, and its LM head when the stage owns one the GPU
 * runs. The stage's embeddings, prompt scoring and calibration stay on the CPU model. A step either takes host FP32 rows in and out ({@link #run}), or keeps
 * its rows on the device between a link frame decoded there ({@link #receive}), the layers
 * ({@link #runOnDevice}) and a frame encoded there ({@link #encodeFrame}), so only packed frame bytes cross
 * PCIe. Used from the stage's compute thread only.
 */
final class GpuLayers implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(GpuLayers.class);
    private final int device;
    private final CudaSettings settings;
    private final int maxBatchTokens;
    private final Map<Integer, GpuSequence> sequences = new HashMap<>();
    private GpuStage stage;
    private GpuFrameCodecs frameCodecs; // on first use, with the stage's kernels module; closed before the stage
    private PinnedHostBuffer sendFrame;  // outbound frames encoded on the device land here

    private GpuLayers(int device, CudaSettings settings, int maxBatchTokens, GpuStage stage) {
        this.device = device;
        this.settings = settings;
        this.maxBatchTokens = maxBatchTokens;
        this.stage = stage;
    }

    private GpuFrameCodecs frameCodecs() {
        if (frameCodecs == null) {
            frameCodecs = new GpuFrameCodecs(stage.linkKernels(), stage.config().hiddenSize(), stage.maxBatchTokens());
        }
        return frameCodecs;
    }

    private void closeFrameCodecs() {
        if (frameCodecs != null) {
            stage.context().makeCurrent(); // device frees need the stage's context on whichever thread closes
            stage.stream().synchronize();
            frameCodecs.close();
            frameCodecs = null;
        }
    }

    /** Uploads {@code model}'s layers (FP32 → FP16, or per-token W8A8) to cuda:{@code device}. */
    static GpuLayers open(int device, CudaSettings settings, OptModel model, int maxBatchTokens) {
        return new GpuLayers(device, settings, maxBatchTokens, build(device, settings, model, maxBatchTokens));
    }

    /**
     * Streams the layers of {@code host}'s range from {@code layers} to cuda:{@code device}, one at a time (the host
     * never holds the stage's layers); {@code host} has the stage's embeddings and head only.
     */
    static GpuLayers stream(int device, CudaSettings settings, OptModel host, StageRecipe recipe,
                            GpuStage.LayerSource layers, int maxBatchTokens) {
        return new GpuLayers(device, settings, maxBatchTokens, prepared(GpuStage.stream(device, settings, host, recipe, layers,
                maxBatchTokens, host.config().maxPositions())));
    }

    private static GpuStage build(int device, CudaSettings settings, OptModel model, int maxBatchTokens) {
        return prepared(GpuStage.open(device, settings, model, maxBatchTokens, model.config().maxPositions()));
    }

    private static GpuStage prepared(GpuStage stage) {
        try {
            stage.prepareServing(); // tunes every GEMM bucket now, so no request waits for it
            return stage;
        } catch (RuntimeException e) {
            stage.close();
            throw e;
        }
    }

    /** Serves {@code model} from now on (a quantized stage built after calibration); no sequence may be open. */
    void rebuild(OptModel model) {
        if (!sequences.isEmpty()) {
            throw new IllegalStateException(sequences.size() + " sequences still hold KV caches on the GPU stage");
        }
        GpuStage replacement = build(device, settings, model, maxBatchTokens);
        closeFrameCodecs();
        stage.close();
        stage = replacement;
    }

    /**
     * Runs every layer over {@code hidden} (rows in layout order, FP32, in place). Calibration steps
     * ({@code throwaway}) run whole sequences on caches freed right after; the others continue their
     * sequence's cache, which must hold exactly the entry's start position.
     */
    void run(List<BatchLayout.Entry> entries, boolean throwaway, MemorySegment hidden) {
        List<GpuSequence> temporary = new ArrayList<>();
        try {
            stage.runLayers(chunks(entries, throwaway ? temporary : null), hidden);
        } finally {
            temporary.forEach(stage::release);
        }
    }

    /** True when frames of {@code codec} can be decoded and encoded on this stage's GPU. */
    boolean codesOnDevice(LinkCodec codec) {
        return GpuFrameCodecs.runsOnDevice(codec, stage.config().hiddenSize());
    }

    /** Queues the decode of a validated frame's rows onto the device, where {@link #runOnDevice} finds them. */
    void receive(LinkFrameReader frame) {
        stage.context().makeCurrent();
        frameCodecs().decoder(frame.codec()).decodeAsync(frame, DType.F32, stage.hiddenBuffer(), 0, stage.stream());
    }

    /** Queues the copy of host FP32 rows (the first stage's embeddings) onto the device. */
    void load(MemorySegment hidden, int rows) {
        stage.loadHidden(hidden, rows);
    }

    /** Queues every layer over the rows already on the device; each entry continues its sequence's cache. */
    void runOnDevice(List<BatchLayout.Entry> entries) {
        stage.enqueueLayers(chunks(entries, null));
    }

    /** Whether this stage's logits can come from the GPU ({@link #logits}). */
    boolean hasLmHead() {
        return stage.hasLmHead();
    }

    /** Logits of {@code rows} of the step's rows on the device (final LayerNorm + LM head there), once the queued work is done. */
    float[][] logits(int[] rows) {
        return stage.logits(rows);
    }

    /**
     * The next token of each of {@code rows} of the step's rows, sampled on the device as {@code params} says (final
     * LayerNorm, LM head and sampling there), once the queued work is done: only the token ids come back.
     */
    void sample(int[] rows, SamplingRows params, int[] tokensOut) {
        stage.sample(rows, params, tokensOut);
    }

    /** Whether the stage embeds its own inputs on the device (it owns them and the LM head): steps can run ahead. */
    boolean embedsOnDevice() {
        return stage.embedsOnDevice();
    }

    /** Queues a step's input embeddings onto the device ({@link GpuStage#embed}). */
    void embed(int rows, int[] tokens, int[] fed, int[] positions, GpuStage.SampledTokens previous) {
        stage.embed(rows, tokens, fed, positions, previous);
    }

    int maxSampledAhead() {
        return stage.maxSampledAhead();
    }

    /** Queues final LayerNorm, head and sampling of {@code rows}; the tokens stay on the device until awaited. */
    GpuStage.SampledTokens sampleAhead(int[] rows, SamplingRows params) {
        return stage.sampleAhead(rows, params);
    }

    void awaitSampled(GpuStage.SampledTokens pass, int[] tokensOut) {
        stage.awaitSampled(pass, tokensOut);
    }

    /** Waits for the queued work and copies the device's rows to {@code hidden} (the CPU's LM head or prompt scoring). */
    void store(MemorySegment hidden, int rows) {
        stage.storeHidden(hidden, rows);
    }

    /**
     * Encodes the device's rows into a frame of {@code codec} in pinned memory once the queued work is done:
     * {@code header} sets the frame's header fields on a writer wrapped there; only params and payload come
     * back over PCIe. Returns the frame, valid until the next call.
     */
    MemorySegment encodeFrame(LinkCodec codec, BatchLayout layout, long frameBytes, Consumer<LinkFrameWriter> header,
                              LinkFrameWriter writer) {
        stage.context().makeCurrent();
        if (sendFrame == null || sendFrame.byteSize() < frameBytes) {
            long grown = sendFrame == null ? frameBytes : Math.max(frameBytes, 2 * sendFrame.byteSize());
            if (sendFrame != null) {
                sendFrame.close(); // no copy reads it now: the last encode was awaited
                sendFrame = null;
            }
            sendFrame = PinnedHostBuffer.allocate(grown);
        }
        header.accept(writer.wrap(sendFrame.segment()));
        long length = frameCodecs().encoder(codec).writeFrame(writer, sendFrame, layout, stage.hiddenBuffer(), 0, DType.F32,
                layout.tokens(), stage.stream());
        return sendFrame.segment().asSlice(0, length);
    }

    /** A chunk per entry; a throwaway sequence each (added to {@code temporary}) when that is not null. */
    private List<GpuChunk> chunks(List<BatchLayout.Entry> entries, List<GpuSequence> temporary) {
        List<GpuChunk> chunks = new ArrayList<>(entries.size());
        for (BatchLayout.Entry entry : entries) {
            GpuSequence sequence;
            if (temporary != null) {
                sequence = stage.newSequence(entry.tokenCount());
                temporary.add(sequence);
            } else {
                sequence = sequenceFor(entry);
            }
            chunks.add(new GpuChunk(sequence, entry.tokenCount()));
        }
        return chunks;
    }

    private GpuSequence sequenceFor(BatchLayout.Entry entry) {
        GpuSequence sequence = sequences.get(entry.sequenceId());
        if (CacheContinuity.startsSequence(entry, sequence == null ? -1 : sequence.length(), "the GPU stage")) {
            sequence = entry.kvCapacity() > 0 ? stage.newSequence(Math.min(entry.kvCapacity(), stage.maxPositions()))
                    : stage.newSequence();
            sequences.put(entry.sequenceId(), sequence);
        }
        return sequence;
    }

    void release(int sequenceId) {
        GpuSequence sequence = sequences.remove(sequenceId);
        if (sequence != null) {
            stage.release(sequence);
        }
    }

    /**
     * KV cache positions that fit beside this stage: in the worker's share of the device less what the stage holds,
     * and in what the device has free (other workers may share it), keeping a tenth for the allocator's slack (each
     * cache is one allocation, rounded up to the allocator's granularity) and other work.
     */
    long kvTokens(long memoryShare) {
        long free = stage.context().memoryInfo()[0];
        long budget = Math.min(free, memoryShare - stage.weightBytes() - stage.activationBytes());
        long perToken = Math.ceilDiv(stage.sequenceBytes(), stage.maxPositions());
        return Math.max(0, budget / 10 * 9 / perToken);
    }

    int sequenceCount() {
        return sequences.size();
    }

    long cacheBytes() {
        long bytes = 0;
        for (GpuSequence sequence : sequences.values()) {
            bytes += sequence.bytes();
        }
        return bytes;
    }

    long weightBytes() {
        return stage.weightBytes();
    }

    String describe() {
        return stage.recipe().label() + " on " + CudaDevice.get(device).describe() + ", "
                + (stage.weightBytes() >> 20) + " MiB of weights, " + (stage.activationBytes() >> 20) + " MiB of step buffers, "
                + stage.kvFormat().label() + " KV cache";
    }

    @Override
    public void close() {
        LOG.info("GPU stage on cuda:{} closing: {}", device, stage.servingCosts());
        sequences.values().forEach(stage::release);
        sequences.clear();
        try {
            closeFrameCodecs();
            if (sendFrame != null) {
                sendFrame.close();
            }
        } finally {
            stage.close();
        }
    }
}
