package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;
import io.bitrelay.runtime.tensor.DType;

/**
 * LayerNorm of FP32 rows ({@code layernorm.cu}) as {@link io.bitrelay.runtime.ops.cpu.VectorMath#layerNorm}
 * computes it (to FP32 rounding: the GPU sums in float, the CPU in double), with FP32 or FP16 output, or fused
 * with per-token INT8 quantization for the W8A8 projections that follow it. Device addresses.
 */
public final class LayerNormKernels {
    private final KernelLaunch f32;
    private final KernelLaunch f16;
    private final KernelLaunch quantize;

    public LayerNormKernels(CudaKernels kernels) {
        this.f32 = kernels.launcher("br_layernorm_f32", 6);
        this.f16 = kernels.launcher("br_layernorm_f16", 6);
        this.quantize = kernels.launcher("br_layernorm_quantize", 7);
    }

    /**
     * @param x    (rows, cols) FP32
     * @param gain (cols) FP32
     * @param bias (cols) FP32
     * @param out  (rows, cols) of {@code outputType} (F32 or F16)
     */
    public void layerNorm(DType outputType, long x, long gain, long bias, long out, int rows, int cols, float eps,
                          CudaStream stream) {
        RowKernels.checkFloat(outputType, "LayerNorm output");
        RowKernels.checkShape(rows, cols);
        (outputType == DType.F32 ? f32 : f16).address(0, x).address(1, gain).address(2, bias).address(3, out).integer(4, cols)
                .real(5, eps).launch(rows, 1, RowKernels.ROW_BLOCK_THREADS, 0, stream);
    }

    /**
     * LayerNorm, then per-token INT8 quantization of each normalised row.
     *
     * @param q      (rows, cols) INT8 out
     * @param scales (rows) FP32 out
     */
    public void layerNormQuantize(long x, long gain, long bias, long q, long scales, int rows, int cols, float eps,
                                  CudaStream stream) {
        RowKernels.checkShape(rows, cols);
        quantize.address(0, x).address(1, gain).address(2, bias).address(3, q).address(4, scales).integer(5, cols).real(6, eps)
                .launch(rows, 1, RowKernels.ROW_BLOCK_THREADS, 0, stream);
    }
}
