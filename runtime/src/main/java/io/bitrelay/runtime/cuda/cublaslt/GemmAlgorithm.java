package io.bitrelay.runtime.cuda.cublaslt;

import java.lang.foreign.MemorySegment;

/**
 * One cuBLASLt algorithm for one plan, as the heuristics returned it or as the tuner's search changed it.
 *
 * @param algo           the opaque cublasLtMatmulAlgo_t (64 bytes, off-heap, passed to cublasLtMatmul)
 * @param workspaceBytes workspace it needs
 * @param waves          cuBLASLt's estimate of waves of thread blocks over the SMs
 * @param heuristicRank  its position in the heuristics' answer (0 = cuBLASLt's own first choice), or
 *                       {@link #VARIANT} for a configuration the heuristics did not offer, {@link #CACHED} for one
 *                       read from a tuning cache
 * @param config         its configuration in words (algo id, tile, stages, split-K, swizzle, ...)
 */
public record GemmAlgorithm(MemorySegment algo, long workspaceBytes, float waves, int heuristicRank, String config) {
    /** Rank of an algorithm found by changing a heuristic one's configuration. */
    public static final int VARIANT = -1;
    /** Rank of an algorithm taken from a {@link GemmTuningCache} file. */
    public static final int CACHED = -2;

    @Override
    public String toString() {
        String origin = switch (heuristicRank) {
            case VARIANT -> "variant";
            case CACHED -> "cached";
            default -> "#" + heuristicRank;
        };
        return origin + " " + config;
    }
}
