package io.bitrelay.actors.worker;

import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.runtime.generate.SamplingRows;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * A stage whose layers run on the CPU: the serving {@link OptModel} over host rows, one {@link KvCache} per
 * sequence, the model's LM head and the host's samplers; frames are encoded on the host.
 */
final class CpuStageBackend implements StageBackend {
    private final StageModels models;
    private final int layers;
    private final String holder;
    private final Map<Integer, KvCache> caches = new HashMap<>();
    private final Function<BatchLayout.Entry, KvCache> servingCaches = this::cacheFor;

    CpuStageBackend(StageModels models, StageAssignment assignment) {
        this.models = models;
        this.layers = assignment.endLayer() - assignment.firstLayer();
        this.holder = "stage " + assignment.stageIndex();
    }

    /**
     * A chunk per entry of a step's rows: its tokens on the cache {@code cacheFor} gives it. {@code tokens} is null
     * past the first stage; the layers read only their count.
     */
    static List<SequenceChunk> chunks(BatchLayout layout, List<int[]> tokens, Function<BatchLayout.Entry, KvCache> cacheFor) {
        List<SequenceChunk> chunks = new ArrayList<>();
        for (int i = 0; i < layout.entries().size(); i++) {
            BatchLayout.Entry entry = layout.entries().get(i);
            int[] chunkTokens = tokens != null ? tokens.get(i) : new int[entry.tokenCount()];
            chunks.add(new SequenceChunk(chunkTokens, cacheFor.apply(entry)));
        }
        return chunks;
    }

    @Override
    public MemorySegment load(MemorySegment embedded, BatchLayout layout) {
        return embedded;
    }

    @Override
    public MemorySegment receive(LinkFrameReader frame, BatchLayout layout, Arena step) {
        return StageBackend.decodeOnHost(frame, step);
    }

    @Override
    public void runLayers(BatchLayout layout, List<int[]> tokens, MemorySegment hidden, Arena step) {
        models.serving().runLayers(chunks(layout, tokens, servingCaches), hidden, step, null);
    }

    @Override
    public void runCalibration(BatchLayout layout, List<int[]> tokens, MemorySegment hidden, Arena step) {
        OptModel model = models.serving();
        try (ThrowawayCaches throwaway = new ThrowawayCaches(model)) {
            model.runLayers(chunks(layout, tokens, throwaway::newCache), hidden, step, null);
        }
    }

    private KvCache cacheFor(BatchLayout.Entry entry) {
        KvCache cache = caches.get(entry.sequenceId());
        if (CacheContinuity.startsSequence(entry, cache == null ? -1 : cache.length(), holder)) {
            cache = models.serving().newCache();
            caches.put(entry.sequenceId(), cache);
        }
        return cache;
    }

    @Override
    public MemorySegment headRows(BatchLayout layout, MemorySegment hidden, Arena step) {
        return hidden;
    }

    @Override
    public float[][] logits(BatchLayout layout, MemorySegment hidden, int[] rows, Arena step) {
        return models.serving().logits(hidden, rows, step);
    }

    @Override
    public boolean samplesOnDevice(BatchLayout layout) {
        return false;
    }

    @Override
    public void sample(int[] rows, SamplingRows params, int[] tokensOut) {
        throw new UnsupportedOperationException("a CPU stage samples on the host");
    }

    @Override
    public boolean encodesOnDevice(MemorySegment hidden, LinkCodec codec) {
        return false;
    }

    @Override
    public MemorySegment encodeFrame(LinkCodec codec, BatchLayout layout, long frameBytes, Consumer<LinkFrameWriter> header,
                                     LinkFrameWriter writer) {
        throw new UnsupportedOperationException("a CPU stage encodes its frames on the host");
    }

    @Override
    public MemorySegment hostRows(BatchLayout layout, MemorySegment hidden, Arena step) {
        return hidden;
    }

    @Override
    public void release(int sequenceId) {
        KvCache cache = caches.remove(sequenceId);
        if (cache != null) {
            cache.close();
        }
    }

    @Override
    public int cachedSequences() {
        return caches.size();
    }

    @Override
    public long cacheBytes() {
        long bytes = 0;
        for (KvCache cache : caches.values()) {
            bytes += cache.bytes();
        }
        return bytes;
    }

    @Override
    public void rebuild(OptModel quantized) {
        // the layers run on whatever model serves: nothing to rebuild
    }

    @Override
    public long weightBytes() {
        return models.serving().config().layerParameters() * layers * Float.BYTES;
    }

    @Override
    public long kvTokens(long memoryShare) {
        return Long.MAX_VALUE; // unbounded on the CPU: each cache grows with its sequence
    }

    @Override
    public void close() {
        caches.values().forEach(KvCache::close);
        caches.clear();
    }
}
