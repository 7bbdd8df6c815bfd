package io.bitrelay.runtime.cuda.cublaslt;

import java.time.Duration;

/**
 * How far {@link GemmAutotuner} looks past cuBLASLt's heuristics for one GEMM shape.
 *
 * @param variations also time one-attribute changes (tile, stages, split-K, swizzle, cluster shape) of the fastest
 *                   heuristic algorithms, walking downhill for a few rounds ({@link AlgoVariations})
 * @param budget     wall-clock time the walk may take per shape and precision, on top of timing the heuristics'
 *                   answers
 */
public record GemmSearch(boolean variations, Duration budget) {
    /** The heuristics' algorithms only: what a worker uses at start-up, where tuning time delays serving. */
    public static final GemmSearch HEURISTICS = new GemmSearch(false, Duration.ZERO);

    public GemmSearch {
        if (budget.isNegative()) {
            throw new IllegalArgumentException("GEMM search budget must not be negative: " + budget);
        }
    }

    /** Heuristics, then their neighbourhood for at most {@code budget} per shape. */
    public static GemmSearch variations(Duration budget) {
        return new GemmSearch(true, budget);
    }

    /** {@code heuristics} or {@code variations:<millis>ms}, as in configs and benchmark output. */
    public String label() {
        return variations ? "variations:" + budget.toMillis() + "ms" : "heuristics";
    }
}
