package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.CudaGraph;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.kernels.AttentionKernels;

import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * CUDA graphs of a stage's decode steps: the launch sequence of all layers (a few hundred kernels and GEMMs)
 * captured once per launch configuration and replayed as one submission, so that decode no longer pays a
 * host launch per kernel nor the gaps between them.
 *
 * <p>A graph freezes every launch argument, so the key is everything a decode step's launches take from the
 * host: the row count (= decode sequences: grids, GEMM buckets, kernel arguments) and the attention split
 * (the decode grid and its keys per split). What changes every step, each sequence's cache addresses and
 * length, lives in the AttentionSeq records the step uploads to the same device address before the replay.
 * A key is captured the second time it is seen: its first step runs eagerly, which tunes its GEMMs and loads
 * its kernels (neither may happen during a capture), and one-off configurations never pay an instantiation.
 * If a capture fails the graphs turn themselves off for the stage (logged with the reason) and steps run eagerly.
 */
final class DecodeGraphs implements AutoCloseable {
    /** Graphs kept; a sequence's context growing past a split boundary makes a new key, old ones age out. */
    static final int MAX_GRAPHS = 64;
    private static final Logger LOG = Logger.getLogger(DecodeGraphs.class.getName());

    private record Key(int rows, int keysPerSplit, int maxSplits) {
    }

    private final CudaStream stream;
    private final Set<Key> seen = new HashSet<>();
    private final LinkedHashMap<Key, CudaGraph> graphs = new LinkedHashMap<>(16, 0.75f, true);
    private String disabledReason;
    private long replays;
    private long captures;

    DecodeGraphs(CudaStream stream) {
        this.stream = stream;
    }

    /** Queues {@code step}'s layers, {@code enqueue}, on the stream: replayed, captured, or eagerly. */
    void run(AttentionStep step, Runnable enqueue) {
        if (disabledReason != null || step.prefillSeqs() > 0 || step.split() == null) {
            enqueue.run();
            return;
        }
        AttentionKernels.DecodeSplit split = step.split();
        Key key = new Key(step.rows(), split.keysPerSplit(), split.maxSplits());
        CudaGraph graph = graphs.get(key);
        if (graph == null) {
            if (seen.add(key)) {
                enqueue.run();
                return;
            }
            try {
                graph = CudaGraph.capture(stream, enqueue);
            } catch (RuntimeException e) {
                disabledReason = e.toString();
                LOG.log(Level.WARNING, "decode CUDA graphs turned off for this stage, capture failed: " + disabledReason, e);
                enqueue.run();
                return;
            }
            captures++;
            graphs.put(key, graph);
            evictBeyondLimit();
        }
        graph.launch(stream);
        replays++;
    }

    private void evictBeyondLimit() {
        if (graphs.size() <= MAX_GRAPHS) {
            return;
        }
        Map.Entry<Key, CudaGraph> eldest = graphs.entrySet().iterator().next();
        stream.synchronize(); // a queued replay of it may still be pending
        eldest.getValue().close();
        graphs.remove(eldest.getKey());
    }

    /** Null while graphs work; else why they were turned off. */
    String disabledReason() {
        return disabledReason;
    }

    long replays() {
        return replays;
    }

    long captures() {
        return captures;
    }

    /** The stream must be idle (the stage synchronizes it before closing). */
    @Override
    public void close() {
        graphs.values().forEach(CudaGraph::close);
        graphs.clear();
        seen.clear();
    }
}
