package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;
import io.bitrelay.runtime.tensor.DType;

/**
 * The W8A8 GEMM epilogue ({@code dequantize.cu}):
 * {@code out[i,j] = acc[i,j] · (rowScales[i] · colScales[j]) + bias[j] (+ residual[i,j])}, bit-exact with
 * {@link io.bitrelay.runtime.ops.cpu.Int8Quantize#dequantize} followed by a residual add. Device addresses;
 * {@code 0} for no bias / no residual. {@code residual} may equal {@code out} (in-place residual update).
 */
public final class DequantizeKernel {
    private final KernelLaunch f32;
    private final KernelLaunch f16;

    public DequantizeKernel(CudaKernels kernels) {
        this.f32 = kernels.launcher("br_dequantize_f32", 7);
        this.f16 = kernels.launcher("br_dequantize_f16", 7);
    }

    /**
     * @param acc       (rows, cols) INT32
     * @param rowScales (rows) FP32
     * @param colScales (cols) FP32
     * @param bias      (cols) FP32, or 0
     * @param residual  (rows, cols) of {@code outputType}, or 0
     * @param out       (rows, cols) of {@code outputType} (F32 or F16)
     */
    public void dequantize(DType outputType, long acc, long rowScales, long colScales, long bias, long residual, long out,
                           int rows, int cols, CudaStream stream) {
        RowKernels.checkFloat(outputType, "dequantize output");
        RowKernels.checkShape(rows, cols);
        if (rows > RowKernels.MAX_ELEMENT_ROWS) {
            throw new IllegalArgumentException("dequantize takes at most " + RowKernels.MAX_ELEMENT_ROWS + " rows, got " + rows);
        }
        (outputType == DType.F32 ? f32 : f16).address(0, acc).address(1, rowScales).address(2, colScales).address(3, bias)
                .address(4, residual).address(5, out).integer(6, cols)
                .launch(RowKernels.blocks(cols, RowKernels.ELEMENT_BLOCK_THREADS), rows, RowKernels.ELEMENT_BLOCK_THREADS, 0, stream);
    }
}
