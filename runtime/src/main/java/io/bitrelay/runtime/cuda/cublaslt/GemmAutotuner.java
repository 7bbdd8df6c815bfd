package io.bitrelay.runtime.cuda.cublaslt;

import io.bitrelay.runtime.cuda.CudaEvent;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.Set;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Picks, per GEMM shape and precision, the fastest cuBLASLt algorithm by timing rather than trusting the
 * first heuristic: for each layout in {@link GemmLayout} it asks the heuristics for up to
 * {@code maxCandidates} algorithms under several workspace limits, times each on the caller's buffers with
 * CUDA events (median of {@code timedRuns} launches after a warm-up), re-times the best three four times
 * longer, and caches the winner with its plan. With {@link GemmSearch#variations} it also walks the
 * neighbourhood of the fastest heuristic algorithms (one configuration attribute changed at a time, cuBLASLt
 * checking each) before the finalists are picked. The cache lives as long as this object; tuning the same key
 * again returns the cached choice.
 *
 * <p>Tuning writes the output buffer (garbage until the caller runs the GEMM for real) and takes
 * milliseconds to seconds per shape: do it at start-up or in a benchmark, not per request.
 */
public final class GemmAutotuner implements AutoCloseable {
    /**
     * What one tuning found.
     *
     * @param firstHeuristicMicros what cuBLASLt's first heuristic choice (weights-first layout) cost while tuning
     * @param bestHeuristicMicros  the fastest of the heuristics' algorithms while tuning, before any variation
     */
    public record Choice(GemmPlan plan, GemmAlgorithm algorithm, double medianMicros, int candidatesTimed,
                         double firstHeuristicMicros, double bestHeuristicMicros) {
        /** Algorithm and layout in words, for logs and benchmark tables. */
        public String describe() {
            return plan.layout().label() + " " + algorithm;
        }
    }

    private record Key(GemmPrecision precision, int m, int n, int k) {
    }

    private record Candidate(GemmPlan plan, GemmAlgorithm algorithm, double micros) {
    }

    /** Candidates re-timed before the choice, and how many times longer. */
    private static final int FINALISTS = 3;
    private static final int FINALIST_RUN_FACTOR = 4;
    /** Heuristic algorithms whose neighbourhoods a variation search walks, and how many steps downhill each. */
    private static final int SEARCH_SEEDS = 3;
    private static final int SEARCH_ROUNDS = 3;
    /**
     * Workspace limits the heuristics are asked under: they answer at most about 8 algorithms per query, and a
     * smaller limit yields different ones (fewer split-K / stream-K kernels), so the pool grows without
     * enumerating algorithm ids by hand.
     */
    private static final long[] WORKSPACE_LIMITS_BYTES = {Long.MAX_VALUE, 4L << 20, 0};

    private final CublasLt lt;
    private final DeviceBuffer workspace;
    private final CudaStream stream;
    private final int maxCandidates;
    private final int timedRuns;
    private final GemmSearch search;
    private final Map<Key, Choice> cache = new ConcurrentHashMap<>();

    /**
     * @param workspace     cuBLASLt workspace (owned by the caller), 32-64 MiB suits Hopper's split-K kernels
     * @param maxCandidates algorithms requested from the heuristics per layout
     * @param timedRuns     timed launches per candidate
     */
    public GemmAutotuner(CublasLt lt, DeviceBuffer workspace, CudaStream stream, int maxCandidates, int timedRuns) {
        this(lt, workspace, stream, maxCandidates, timedRuns, GemmSearch.HEURISTICS);
    }

    /** As above, looking past the heuristics as {@code search} says. */
    public GemmAutotuner(CublasLt lt, DeviceBuffer workspace, CudaStream stream, int maxCandidates, int timedRuns,
                         GemmSearch search) {
        if (maxCandidates < 1 || timedRuns < 1) {
            throw new IllegalArgumentException("maxCandidates and timedRuns must be positive");
        }
        this.lt = lt;
        this.workspace = workspace;
        this.stream = stream;
        this.maxCandidates = maxCandidates;
        this.timedRuns = timedRuns;
        this.search = search;
    }

    /** The cached choice for this GEMM, tuning it first on {@code x}, {@code w}, {@code y} (device addresses). */
    public Choice tune(GemmPrecision precision, int m, int n, int k, long x, long w, long y) {
        Key key = new Key(precision, m, n, k);
        Choice cached = cache.get(key);
        if (cached != null) {
            return cached;
        }
        List<GemmPlan> plans = new ArrayList<>();
        List<Candidate> candidates = new ArrayList<>();
        double firstHeuristic = Double.NaN;
        double bestHeuristic = Double.NaN;
        Choice best = null;
        try {
            for (GemmLayout layout : GemmLayout.values()) {
                GemmPlan plan = GemmPlan.create(lt, precision, layout, m, n, k);
                plans.add(plan);
                for (GemmAlgorithm algorithm : candidatesOf(plan)) {
                    double micros;
                    try {
                        micros = time(plan, algorithm, x, w, y, 2, timedRuns);
                    } catch (CublasLtException e) {
                        continue; // offered by the heuristics but refused at launch: skip it
                    }
                    if (layout == GemmLayout.WEIGHTS_FIRST && algorithm.heuristicRank() == 0 && Double.isNaN(firstHeuristic)) {
                        firstHeuristic = micros;
                    }
                    candidates.add(new Candidate(plan, algorithm, micros));
                }
            }
            candidates.sort(Comparator.comparingDouble(Candidate::micros));
            bestHeuristic = candidates.isEmpty() ? Double.NaN : candidates.getFirst().micros();
            if (search.variations()) {
                walkVariations(candidates, x, w, y);
                candidates.sort(Comparator.comparingDouble(Candidate::micros));
            }
            // A median of a few launches ranks candidates; the close ones are timed again, longer, before one wins.
            for (Candidate candidate : candidates.subList(0, Math.min(FINALISTS, candidates.size()))) {
                double micros = time(candidate.plan(), candidate.algorithm(), x, w, y, 2, FINALIST_RUN_FACTOR * timedRuns);
                if (best == null || micros < best.medianMicros()) {
                    best = new Choice(candidate.plan(), candidate.algorithm(), micros, 0, 0, 0);
                }
            }
        } finally {
            GemmPlan kept = best == null ? null : best.plan();
            plans.stream().filter(p -> p != kept).forEach(GemmPlan::close);
        }
        if (best == null) {
            throw new IllegalStateException("cuBLASLt offers no algorithm for " + precision.label() + " m=" + m + " n=" + n
                    + " k=" + k + " in any layout");
        }
        int timed = candidates.size();
        Choice choice = new Choice(best.plan(), best.algorithm(), best.medianMicros(), timed, firstHeuristic, bestHeuristic);
        cache.put(key, choice);
        return choice;
    }

    /**
     * From each of the fastest {@link #SEARCH_SEEDS} candidates, times every configuration one attribute away and moves
     * to the fastest while that improves, for up to {@link #SEARCH_ROUNDS} steps, within the search budget. Adds what it
     * timed to {@code candidates} (sorted fastest first on entry).
     */
    private void walkVariations(List<Candidate> candidates, long x, long w, long y) {
        long deadline = System.nanoTime() + search.budget().toNanos();
        Set<String> seen = new HashSet<>();
        candidates.forEach(c -> seen.add(fingerprint(c.plan(), c.algorithm().algo())));
        List<Candidate> seeds = List.copyOf(candidates.subList(0, Math.min(SEARCH_SEEDS, candidates.size())));
        for (Candidate seed : seeds) {
            Candidate current = seed;
            for (int round = 0; round < SEARCH_ROUNDS && System.nanoTime() < deadline; round++) {
                Candidate fastest = current;
                for (MemorySegment variant : AlgoVariations.of(lt.library(), current.algorithm().algo())) {
                    if (System.nanoTime() >= deadline) {
                        break;
                    }
                    if (!seen.add(fingerprint(current.plan(), variant))) {
                        continue;
                    }
                    GemmAlgorithm algorithm = current.plan().check(lt, variant, GemmAlgorithm.VARIANT);
                    if (algorithm == null || algorithm.workspaceBytes() > workspace.byteSize()) {
                        continue;
                    }
                    double micros;
                    try {
                        micros = time(current.plan(), algorithm, x, w, y, 1, timedRuns);
                    } catch (CublasLtException e) {
                        continue; // accepted by the check, refused at launch
                    }
                    Candidate timed = new Candidate(current.plan(), algorithm, micros);
                    candidates.add(timed);
                    if (micros < fastest.micros()) {
                        fastest = timed;
                    }
                }
                if (fastest == current) {
                    break;
                }
                current = fastest;
            }
        }
    }

    private static String fingerprint(GemmPlan plan, MemorySegment algo) {
        return plan.layout() + ":" + HexFormat.of().formatHex(algo.toArray(ValueLayout.JAVA_BYTE));
    }

    /** The heuristics' algorithms for {@code plan} under each workspace limit, duplicates removed, first query first. */
    private List<GemmAlgorithm> candidatesOf(GemmPlan plan) {
        List<GemmAlgorithm> pool = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (long limit : WORKSPACE_LIMITS_BYTES) {
            for (GemmAlgorithm algorithm : plan.heuristics(lt, Math.min(limit, workspace.byteSize()), maxCandidates)) {
                if (seen.add(fingerprint(plan, algorithm.algo()))) {
                    pool.add(algorithm);
                }
            }
        }
        return pool;
    }

    /** Median microseconds of {@code runs} launches of {@code algorithm}, each timed by its own pair of events. */
    public double time(GemmPlan plan, GemmAlgorithm algorithm, long x, long w, long y, int warmups, int runs) {
        for (int i = 0; i < warmups; i++) {
            plan.run(lt, algorithm, x, w, y, workspace.address(), workspace.byteSize(), stream.address());
        }
        CudaEvent[] starts = new CudaEvent[runs];
        CudaEvent[] ends = new CudaEvent[runs];
        try {
            for (int i = 0; i < runs; i++) {
                starts[i] = CudaEvent.create();
                ends[i] = CudaEvent.create();
            }
            for (int i = 0; i < runs; i++) {
                starts[i].record(stream);
                plan.run(lt, algorithm, x, w, y, workspace.address(), workspace.byteSize(), stream.address());
                ends[i].record(stream);
            }
            double[] micros = new double[runs];
            for (int i = 0; i < runs; i++) {
                micros[i] = 1000.0 * CudaEvent.elapsedMillis(starts[i], ends[i]);
            }
            Arrays.sort(micros);
            return micros[runs / 2];
        } finally {
            for (int i = 0; i < runs; i++) {
                if (starts[i] != null) {
                    starts[i].close();
                }
                if (ends[i] != null) {
                    ends[i].close();
                }
            }
        }
    }

    /** The choices tuned or adopted so far, as tuning-cache entries. */
    public List<GemmTuningCache.Entry> entries() {
        List<GemmTuningCache.Entry> entries = new ArrayList<>();
        cache.forEach((key, choice) -> entries.add(new GemmTuningCache.Entry(key.precision(), key.m(), key.n(), key.k(),
                choice.plan().layout(), choice.algorithm().algo().toArray(ValueLayout.JAVA_BYTE), choice.medianMicros())));
        return entries;
    }

    /**
     * Takes {@code entries} (from a {@link GemmTuningCache} file) as tuned choices, each only after cuBLASLt accepts
     * its algorithm for the plan (another library build or GPU may not); keys already tuned here keep their choice.
     *
     * @return how many entries were taken
     */
    public int adopt(List<GemmTuningCache.Entry> entries) {
        int adopted = 0;
        for (GemmTuningCache.Entry entry : entries) {
            Key key = new Key(entry.precision(), entry.m(), entry.n(), entry.k());
            if (cache.containsKey(key)) {
                continue;
            }
            GemmPlan plan = GemmPlan.create(lt, entry.precision(), entry.layout(), entry.m(), entry.n(), entry.k());
            MemorySegment algo = Arena.ofAuto().allocate(CublasLtLibrary.ALGO_BYTES, 8);
            algo.copyFrom(MemorySegment.ofArray(entry.algo()));
            GemmAlgorithm algorithm = plan.check(lt, algo, GemmAlgorithm.CACHED);
            if (algorithm == null || algorithm.workspaceBytes() > workspace.byteSize()) {
                plan.close();
                continue;
            }
            cache.put(key, new Choice(plan, algorithm, entry.micros(), 0, Double.NaN, Double.NaN));
            adopted++;
        }
        return adopted;
    }

    /** Runs the GEMM with the cached choice for its key ({@link #tune} first); queued on this tuner's stream. */
    public void run(GemmPrecision precision, int m, int n, int k, long x, long w, long y) {
        Choice choice = tune(precision, m, n, k, x, w, y);
        choice.plan().run(lt, choice.algorithm(), x, w, y, workspace.address(), workspace.byteSize(), stream.address());
    }

    @Override
    public void close() {
        cache.values().forEach(c -> c.plan().close());
        cache.clear();
    }
}
