package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;

/** Fills device memory with seeded random INT8 codes or FP16 values ({@code fill_random.cu}): test and benchmark data. */
public final class RandomFillKernels {
    private static final int BLOCKS = 1024;
    private final KernelLaunch int8;
    private final KernelLaunch fp16;

    public RandomFillKernels(CudaKernels kernels) {
        this.int8 = kernels.launcher("br_fill_random_i8", 3);
        this.fp16 = kernels.launcher("br_fill_random_f16", 4);
    }

    /** {@code count} INT8 codes, uniform in [-127, 127]. */
    public void int8(long out, long count, long seed, CudaStream stream) {
        int8.address(0, out).address(1, count).address(2, seed).launch(BLOCKS, 1, RowKernels.ELEMENT_BLOCK_THREADS, 0, stream);
    }

    /** {@code count} FP16 values, uniform in [-scale, scale). */
    public void fp16(long out, long count, long seed, float scale, CudaStream stream) {
        fp16.address(0, out).address(1, count).address(2, seed).real(3, scale)
                .launch(BLOCKS, 1, RowKernels.ELEMENT_BLOCK_THREADS, 0, stream);
    }
}
