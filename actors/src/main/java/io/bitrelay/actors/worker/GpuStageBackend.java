package io.bitrelay.actors.worker;

import io.bitrelay.runtime.cuda.stage.GpuStage;
import io.bitrelay.runtime.generate.SamplingRows;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Consumer;

/**
 * A stage whose decoder layers run on its GPU ({@link GpuLayers}, with a device KV cache per sequence); the host's
 * model embeds the first stage's tokens, scores prompts, and is the LM head whenever the device's cannot serve.
 * With device link codecs a serving step's rows stay on the GPU from the frame decoded there (or the embeddings
 * copied there) through the layers to the frame encoded there, or to the device's LM head and sampling on the last
 * stage; otherwise host FP32 rows go in and out of every step.
 */
final class GpuStageBackend implements StageBackend {
    /** The stage's decoder layers on the worker's GPU; owned, closed with this backend. */
    private final GpuLayers gpu;
    private final StageModels models;
    /** The GPU stage's frames are coded on the device (bitrelay.worker.device-link-codecs). */
    private final boolean deviceLinks;
    /** The last stage samples from logits made on the GPU (bitrelay.worker.device-lm-head). */
    private final boolean deviceHead;
    /** Decode steps sample on the device (bitrelay.worker.device-sampling, with the head there). */
    private final boolean deviceSampling;
    /** Steps run ahead of their predecessors' tokens (bitrelay.worker.steps-ahead, on a stage that can). */
    private final boolean stepsAhead;

    GpuStageBackend(GpuLayers gpu, StageModels models, boolean deviceLinks, boolean deviceHead, boolean deviceSampling,
                    boolean stepsAhead) {
        this.gpu = gpu;
        this.models = models;
        this.deviceLinks = deviceLinks;
        this.deviceHead = deviceHead;
        this.deviceSampling = deviceHead && deviceSampling && gpu.hasLmHead();
        this.stepsAhead = stepsAhead && this.deviceSampling && gpu.embedsOnDevice();
    }

    /** A pass of the GPU stage's, as the seam names it. */
    private record DevicePass(GpuStage.SampledTokens tokens) implements SampledAhead {
        @Override
        public int count() {
            return tokens.count();
        }
    }

    @Override
    public boolean runsStepsAhead() {
        return stepsAhead;
    }

    @Override
    public MemorySegment embedOnDevice(int rows, int[] tokens, int[] fed, int[] positions, SampledAhead previous) {
        gpu.embed(rows, tokens, fed, positions, previous == null ? null : ((DevicePass) previous).tokens());
        return ON_DEVICE;
    }

    @Override
    public int maxSampledAhead() {
        return stepsAhead ? gpu.maxSampledAhead() : 0;
    }

    @Override
    public SampledAhead sampleAhead(int[] rows, SamplingRows params) {
        return new DevicePass(gpu.sampleAhead(rows, params));
    }

    @Override
    public void awaitSampled(SampledAhead pass, int[] tokensOut) {
        gpu.awaitSampled(((DevicePass) pass).tokens(), tokensOut);
    }

    private static boolean onDevice(MemorySegment hidden) {
        return hidden == ON_DEVICE;
    }

    @Override
    public MemorySegment load(MemorySegment embedded, BatchLayout layout) {
        if (!deviceLinks) {
            return embedded;
        }
        gpu.load(embedded, layout.tokens());
        return ON_DEVICE;
    }

    @Override
    public MemorySegment receive(LinkFrameReader frame, BatchLayout layout, Arena step) {
        if (!deviceLinks || !gpu.codesOnDevice(frame.codec())) {
            return StageBackend.decodeOnHost(frame, step);
        }
        gpu.receive(frame);
        return ON_DEVICE;
    }

    @Override
    public void runLayers(BatchLayout layout, List<int[]> tokens, MemorySegment hidden, Arena step) {
        if (onDevice(hidden)) {
            gpu.runOnDevice(layout.entries());
        } else {
            gpu.run(layout.entries(), false, hidden);
        }
    }

    @Override
    public void runCalibration(BatchLayout layout, List<int[]> tokens, MemorySegment hidden, Arena step) {
        gpu.run(layout.entries(), true, hidden);
    }

    @Override
    public MemorySegment headRows(BatchLayout layout, MemorySegment hidden, Arena step) {
        if (!onDevice(hidden) || headOnDevice(layout)) {
            return hidden; // rows kept on the device: its LM head alone reads them
        }
        return store(layout, step);
    }

    @Override
    public float[][] logits(BatchLayout layout, MemorySegment hidden, int[] rows, Arena step) {
        // the device's rows are this step's whenever the stage ran on the GPU (run and runOnDevice alike)
        return headOnDevice(layout) ? gpu.logits(rows) : models.serving().logits(hidden, rows, step);
    }

    /**
     * Whether this step's sampled rows get their logits from the GPU: a GPU stage with the head, and no sequence
     * scoring its prompt (that needs every row's logits, so the rows come to the host and the CPU head serves).
     */
    private boolean headOnDevice(BatchLayout layout) {
        return deviceHead && gpu.hasLmHead() && layout.entries().stream().noneMatch(BatchLayout.Entry::scoresPrompt);
    }

    /** Whether the device picks this step's tokens: its head runs there and no sequence wants log-probabilities. */
    @Override
    public boolean samplesOnDevice(BatchLayout layout) {
        return deviceSampling && headOnDevice(layout) && layout.entries().stream().allMatch(e -> e.logprobs() < 0);
    }

    /** Final LayerNorm, head and sampling on the device; only the token ids come back. */
    @Override
    public void sample(int[] rows, SamplingRows params, int[] tokensOut) {
        gpu.sample(rows, params, tokensOut);
    }

    @Override
    public boolean encodesOnDevice(MemorySegment hidden, LinkCodec codec) {
        return onDevice(hidden) && gpu.codesOnDevice(codec);
    }

    @Override
    public MemorySegment encodeFrame(LinkCodec codec, BatchLayout layout, long frameBytes, Consumer<LinkFrameWriter> header,
                                     LinkFrameWriter writer) {
        return gpu.encodeFrame(codec, layout, frameBytes, header, writer);
    }

    /** Rows kept on the device come to the host for a codec the kernels cannot run. */
    @Override
    public MemorySegment hostRows(BatchLayout layout, MemorySegment hidden, Arena step) {
        return onDevice(hidden) ? store(layout, step) : hidden;
    }

    private MemorySegment store(BatchLayout layout, Arena step) {
        MemorySegment hidden = step.allocate((long) layout.tokens() * models.serving().config().hiddenSize() * Float.BYTES, 64);
        gpu.store(hidden, layout.tokens());
        return hidden;
    }

    @Override
    public void release(int sequenceId) {
        gpu.release(sequenceId);
    }

    @Override
    public int cachedSequences() {
        return gpu.sequenceCount();
    }

    @Override
    public long cacheBytes() {
        return gpu.cacheBytes();
    }

    @Override
    public void rebuild(OptModel quantized) {
        gpu.rebuild(quantized);
    }

    @Override
    public long weightBytes() {
        return gpu.weightBytes();
    }

    @Override
    public long kvTokens(long memoryShare) {
        return gpu.kvTokens(memoryShare);
    }

    @Override
    public void close() {
        gpu.close();
    }
}
