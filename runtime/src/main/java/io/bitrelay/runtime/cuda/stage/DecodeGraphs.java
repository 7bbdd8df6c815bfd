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
 * A key is captured at first sight once an eager step of its launch set (row count, and whether the split-K
 * combine runs) has gone before; the first step of a launch set runs eagerly, which tunes its GEMMs and loads its
 * kernels (neither may happen during a capture). The split's part of the key ({@link AttentionKernels#decodeSplit},
 * bucketed by context) changes only the decode kernel's grid, keys per split and smem, none of which an eager step
 * prepares, so a new split of known rows needs no eager step first: GEMM tuning is keyed by precision and
 * (M = StageCompute.gemmRows(rows), N, K), never by the split, and our kernels are loaded when their launchers are
 * made (cuModuleGetFunction loads a function even under lazy loading). The combine kernel still joins the launch
 * set, so that what an eager step never launched is never launched first inside a capture.
 * If a capture fails the graphs turn themselves off for the stage (logged with the reason) and steps run eagerly.
 */
final class DecodeGraphs implements AutoCloseable {
    /** Graphs kept; a context growing past a split's bucket, or another row count, makes a new key, old ones age out. */
    static final int MAX_GRAPHS = 64;
    private static final Logger LOG = Logger.getLogger(DecodeGraphs.class.getName());

    private record Key(int rows, int keysPerSplit, int maxSplits) {
    }

    /** What an eager step of a key prepares for every key that shares it (see the class comment). */
    private record LaunchSet(int rows, boolean combines) {
    }

    private final CudaStream stream;
    private final Set<LaunchSet> warmed = new HashSet<>();
    private final LinkedHashMap<Key, CudaGraph> graphs = new LinkedHashMap<>(16, 0.75f, true);
    private String disabledReason;
    private long replays;
    private long captures;
    private long captureNanos;
    private long eagerDecodeSteps;
    private long evictions;

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
            LaunchSet launchSet = new LaunchSet(step.rows(), split.maxSplits() > 1);
            if (!warmed.contains(launchSet)) {
                enqueue.run();
                warmed.add(launchSet);
                eagerDecodeSteps++;
                return;
            }
            long start = System.nanoTime();
            try {
                graph = CudaGraph.capture(stream, enqueue);
                captureNanos += System.nanoTime() - start;
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
        evictions++;
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

    /** What the step path paid for graphs beside replays: eager first steps of a launch set, captures, evictions. */
    String costs() {
        return eagerDecodeSteps + " eager decode steps, " + captures + " captures in " + captureNanos / 1_000_000 + " ms, "
                + evictions + " evictions";
    }

    /** The stream must be idle (the stage synchronizes it before closing). */
    @Override
    public void close() {
        graphs.values().forEach(CudaGraph::close);
        graphs.clear();
        warmed.clear();
    }
}
