package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;

/**
 * The FP16 stage path's GEMM epilogues ({@code stage_epilogues.cu}): bias (+ ReLU) in place on an FP16 GEMM
 * output, or bias + residual add into the FP32 residual stream. Device addresses; {@code 0} for no bias.
 */
public final class StageEpilogueKernels {
    private static final int THREADS = 256;
    private final KernelLaunch addBias;
    private final KernelLaunch addBiasResidual;

    public StageEpilogueKernels(CudaKernels kernels) {
        this.addBias = kernels.launcher("br_add_bias_f16", 4);
        this.addBiasResidual = kernels.launcher("br_add_bias_residual_f16", 4);
    }

    /** y = y + bias, then max(·, 0) when {@code relu}; y (rows, cols) FP16, bias (cols) FP32. */
    public void addBias(long y, long bias, int rows, int cols, boolean relu, CudaStream stream) {
        checkShape(rows, cols);
        addBias.address(0, y).address(1, bias).integer(2, cols).integer(3, relu ? 1 : 0).launch(blocks(cols), rows, THREADS, 0, stream);
    }

    /** residual += y + bias; y (rows, cols) FP16, residual (rows, cols) FP32. */
    public void addBiasResidual(long y, long bias, long residual, int rows, int cols, CudaStream stream) {
        checkShape(rows, cols);
        addBiasResidual.address(0, y).address(1, bias).address(2, residual).integer(3, cols)
                .launch(blocks(cols), rows, THREADS, 0, stream);
    }

    private static void checkShape(int rows, int cols) {
        RowKernels.checkShape(rows, cols);
        if (cols % 2 != 0 || rows > RowKernels.MAX_ELEMENT_ROWS) {
            throw new IllegalArgumentException("epilogue needs an even width and at most " + RowKernels.MAX_ELEMENT_ROWS
                    + " rows, got (" + rows + ", " + cols + ")");
        }
    }

    private static int blocks(int cols) {
        return (cols / 2 + THREADS - 1) / THREADS;
    }
}
