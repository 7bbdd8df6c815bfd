package io.bitrelay.runtime.cuda.cublaslt;

import java.lang.foreign.MemorySegment;

/**
 * One cuBLASLt algorithm for one plan, as the heuristics returned it.
 *
 * @param algo           the opaque cublasLtMatmulAlgo_t (64 bytes, off-heap, passed to cublasLtMatmul)
 * @param workspaceBytes workspace it needs
 * @param waves          cuBLASLt's estimate of waves of thread blocks over the SMs
 * @param heuristicRank  its position in the heuristics' answer (0 = cuBLASLt's own first choice)
 * @param config         its configuration in words (algo id, tile, stages, split-K, swizzle, ...)
 */
public record GemmAlgorithm(MemorySegment algo, long workspaceBytes, float waves, int heuristicRank, String config) {
    @Override
    public String toString() {
        return "#" + heuristicRank + " " + config;
    }
}
