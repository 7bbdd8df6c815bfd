package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;

/**
 * The W8A8 stage's fused epilogues ({@code w8a8_epilogues.cu}): an INT32 GEMM output becomes the next GEMM's
 * per-token INT8 input in one launch, one block per row. Twins: {@link io.bitrelay.runtime.ops.cpu.Int8Quantize}
 * dequantize (+ {@code VectorMath.addInPlace}), then {@code VectorMath.layerNorm} or {@code reluInPlace}, then
 * {@code Int8Quantize.quantizeRows}. Device addresses; {@code 0} for no bias. {@code rowScales} may equal
 * {@code qScales} (the GEMM input's scales are replaced by the output's).
 */
public final class W8A8EpilogueKernels {
    private final KernelLaunch residualLayerNormQuantize;
    private final KernelLaunch layerNormQuantize;
    private final KernelLaunch reluQuantize;

    public W8A8EpilogueKernels(CudaKernels kernels) {
        this.residualLayerNormQuantize = kernels.launcher("br_dequantize_residual_layernorm_quantize", 11);
        this.layerNormQuantize = kernels.launcher("br_layernorm_quantize_v4", 7);
        this.reluQuantize = kernels.launcher("br_dequantize_relu_quantize", 7);
    }

    /**
     * hidden += acc · (rowScales ⊗ colScales) + bias, then (q, qScales) = per-token INT8 of LayerNorm(hidden).
     *
     * @param acc    (rows, cols) INT32
     * @param hidden (rows, cols) FP32, the residual stream, updated in place
     * @param q      (rows, cols) INT8 out; qScales (rows) FP32 out
     */
    public void residualLayerNormQuantize(long acc, long rowScales, long colScales, long bias, long hidden, long gain,
                                          long lnBias, long q, long qScales, int rows, int cols, float eps, CudaStream stream) {
        checkShape(rows, cols);
        residualLayerNormQuantize.address(0, acc).address(1, rowScales).address(2, colScales).address(3, bias)
                .address(4, hidden).address(5, gain).address(6, lnBias).address(7, q).address(8, qScales).integer(9, cols)
                .real(10, eps).launch(rows, 1, RowKernels.WIDE_ROW_BLOCK_THREADS, 0, stream);
    }

    /** (q, qScales) = per-token INT8 of LayerNorm(x), x (rows, cols) FP32: what a stage's first layer starts with. */
    public void layerNormQuantize(long x, long gain, long lnBias, long q, long qScales, int rows, int cols, float eps,
                                  CudaStream stream) {
        checkShape(rows, cols);
        layerNormQuantize.address(0, x).address(1, gain).address(2, lnBias).address(3, q).address(4, qScales).integer(5, cols)
                .real(6, eps).launch(rows, 1, RowKernels.WIDE_ROW_BLOCK_THREADS, 0, stream);
    }

    /** (q, qScales) = per-token INT8 of max(acc · (rowScales ⊗ colScales) + bias, 0): fc1's output as fc2's input. */
    public void reluQuantize(long acc, long rowScales, long colScales, long bias, long q, long qScales, int rows, int cols,
                             CudaStream stream) {
        checkShape(rows, cols);
        reluQuantize.address(0, acc).address(1, rowScales).address(2, colScales).address(3, bias).address(4, q)
                .address(5, qScales).integer(6, cols).launch(rows, 1, RowKernels.WIDE_ROW_BLOCK_THREADS, 0, stream);
    }

    private static void checkShape(int rows, int cols) {
        RowKernels.checkShape(rows, cols);
        if (cols % 4 != 0) {
            throw new IllegalArgumentException("the fused W8A8 epilogues load 4 columns at a time: cols must be a multiple of 4, got "
                    + cols);
        }
    }
}
