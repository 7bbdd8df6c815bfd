package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.tensor.DType;

/** Launch shapes and argument checks shared by the one-block-per-row kernels. */
final class RowKernels {
    /** Threads per row block: 8 warps keep a 12288-wide row at 48 elements per thread. */
    static final int ROW_BLOCK_THREADS = 256;
    /**
     * Threads per row block of the kernels whose result does not depend on the block size (maxima, or sums
     * tolerance-checked anyway): at decode one block carries a whole row, and 32 warps finish it sooner.
     */
    static final int WIDE_ROW_BLOCK_THREADS = 1024;
    /** Threads per block of the element-wise kernels. */
    static final int ELEMENT_BLOCK_THREADS = 256;
    /** The element-wise kernels put rows on grid.y. */
    static final int MAX_ELEMENT_ROWS = 65_535;

    private RowKernels() {
    }

    static void checkShape(int rows, int cols) {
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException("bad shape (" + rows + ", " + cols + ")");
        }
    }

    static void checkFloat(DType type, String what) {
        if (type != DType.F32 && type != DType.F16) {
            throw new IllegalArgumentException(what + " must be F32 or F16, got " + type);
        }
    }

    static int blocks(int elements, int threads) {
        return (elements + threads - 1) / threads;
    }
}
