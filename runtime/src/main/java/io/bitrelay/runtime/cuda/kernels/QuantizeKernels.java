package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;
import io.bitrelay.runtime.tensor.DType;

/**
 * Per-token symmetric INT8 quantization on the GPU ({@code quantize_rows.cu}), bit-exact with
 * {@link io.bitrelay.runtime.ops.cpu.Int8Quantize#quantizeRows}: scale = absmax / 127, codes
 * clamp(rint(x / scale), -127, 127). The ReLU variant quantizes max(x, 0), fusing fc1's activation.
 * All pointers are device addresses; work is queued on {@code stream}.
 */
public final class QuantizeKernels {
    private final KernelLaunch f32;
    private final KernelLaunch f16;
    private final KernelLaunch reluF32;
    private final KernelLaunch reluF16;

    public QuantizeKernels(CudaKernels kernels) {
        this.f32 = kernels.launcher("br_quantize_rows_f32", 4);
        this.f16 = kernels.launcher("br_quantize_rows_f16", 4);
        this.reluF32 = kernels.launcher("br_relu_quantize_rows_f32", 4);
        this.reluF16 = kernels.launcher("br_relu_quantize_rows_f16", 4);
    }

    /**
     * @param x      (rows, cols) of {@code inputType} (F32 or F16)
     * @param q      (rows, cols) INT8 out
     * @param scales (rows) FP32 out
     */
    public void quantizeRows(DType inputType, long x, long q, long scales, int rows, int cols, CudaStream stream) {
        launch(inputType == DType.F32 ? f32 : f16, inputType, x, q, scales, rows, cols, stream);
    }

    /** {@link #quantizeRows} of max(x, 0). */
    public void reluQuantizeRows(DType inputType, long x, long q, long scales, int rows, int cols, CudaStream stream) {
        launch(inputType == DType.F32 ? reluF32 : reluF16, inputType, x, q, scales, rows, cols, stream);
    }

    private static void launch(KernelLaunch kernel, DType inputType, long x, long q, long scales, int rows, int cols,
                               CudaStream stream) {
        RowKernels.checkFloat(inputType, "quantize input");
        RowKernels.checkShape(rows, cols);
        // A max is exact in any order, so the block size is free: a wide block keeps a lone decode row short.
        kernel.address(0, x).address(1, q).address(2, scales).integer(3, cols)
                .launch(rows, 1, RowKernels.WIDE_ROW_BLOCK_THREADS, 0, stream);
    }
}
