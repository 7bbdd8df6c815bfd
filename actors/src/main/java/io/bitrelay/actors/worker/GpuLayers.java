package io.bitrelay.actors.worker;

import io.bitrelay.runtime.cuda.CudaDevice;
import io.bitrelay.runtime.cuda.stage.GpuChunk;
import io.bitrelay.runtime.cuda.stage.GpuSequence;
import io.bitrelay.runtime.cuda.stage.GpuStage;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.wire.BatchLayout;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A stage's decoder layers on its GPU: the {@link GpuStage} built from the model the stage serves, and one
 * device KV cache per sequence id. The stage's embeddings, LM head and calibration stay on the CPU model;
 * the hidden states cross PCIe once in and once out per step. Used from the stage's compute thread only.
 */
final class GpuLayers implements AutoCloseable {
    private final int device;
    private final int maxBatchTokens;
    private final Map<Integer, GpuSequence> sequences = new HashMap<>();
    private GpuStage stage;

    private GpuLayers(int device, int maxBatchTokens, GpuStage stage) {
        this.device = device;
        this.maxBatchTokens = maxBatchTokens;
        this.stage = stage;
    }

    /** Uploads {@code model}'s layers (FP32 → FP16, or per-token W8A8) to cuda:{@code device}. */
    static GpuLayers open(int device, OptModel model, int maxBatchTokens) {
        return new GpuLayers(device, maxBatchTokens, build(device, model, maxBatchTokens));
    }

    private static GpuStage build(int device, OptModel model, int maxBatchTokens) {
        GpuStage stage = GpuStage.open(device, model, maxBatchTokens, model.config().maxPositions());
        try {
            stage.prepare(1); // tunes the decode GEMMs now, so the first request does not wait for it
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
        GpuStage replacement = build(device, model, maxBatchTokens);
        stage.close();
        stage = replacement;
    }

    /**
     * Runs every layer over {@code hidden} (rows in layout order, FP32, in place). Calibration steps
     * ({@code throwaway}) run whole sequences on caches freed right after; the others continue their
     * sequence's cache, which must hold exactly the entry's start position.
     */
    void run(List<BatchLayout.Entry> entries, boolean throwaway, MemorySegment hidden) {
        List<GpuChunk> chunks = new ArrayList<>(entries.size());
        List<GpuSequence> temporary = new ArrayList<>();
        try {
            for (BatchLayout.Entry entry : entries) {
                GpuSequence sequence;
                if (throwaway) {
                    sequence = stage.newSequence(entry.tokenCount());
                    temporary.add(sequence);
                } else {
                    sequence = sequenceFor(entry);
                }
                chunks.add(new GpuChunk(sequence, entry.tokenCount()));
            }
            stage.runLayers(chunks, hidden);
        } finally {
            temporary.forEach(stage::release);
        }
    }

    private GpuSequence sequenceFor(BatchLayout.Entry entry) {
        GpuSequence sequence = sequences.get(entry.sequenceId());
        if (CacheContinuity.startsSequence(entry, sequence == null ? -1 : sequence.length(), "the GPU stage")) {
            sequence = stage.newSequence();
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
                + (stage.weightBytes() >> 20) + " MiB of weights, " + (stage.activationBytes() >> 20) + " MiB of step buffers";
    }

    @Override
    public void close() {
        sequences.values().forEach(stage::release);
        sequences.clear();
        stage.close();
    }
}
