package io.bitrelay.runtime.cuda.cublaslt;

/**
 * How {@code Y[M,N] = X[M,K] · W[N,K]^T} (all row-major, W as our checkpoints store it) is described to
 * column-major cuBLASLt. Both are "TN" (only the first operand transposed, K contiguous in both), the
 * layout INT8 IMMA kernels want; they differ in which operand comes first and hence which kernels the
 * heuristics offer, so the autotuner times both.
 */
public enum GemmLayout {
    /**
     * {@code Y^T = W · X^T}: A = W (K×N column-major, ld K, transposed), B = X (K×M column-major, ld K),
     * D = Y^T (N×M column-major, ld N), which is Y row-major. cuBLAS sees m = N (large), n = M (tokens): the
     * classic way to call column-major BLAS on row-major data.
     */
    WEIGHTS_FIRST("W*X^T"),
    /**
     * {@code Y = X · W^T}: A = X (K×M column-major, transposed), B = W (K×N column-major), D = Y with
     * CUBLASLT_ORDER_ROW (M×N, ld N). cuBLAS sees m = M, n = N.
     */
    ACTIVATIONS_FIRST("X*W^T,rowD");

    private final String label;

    GemmLayout(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }
}
