package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;
import jcuda.driver.CUfunction;

/** Fills device memory with seeded random INT8 codes or FP16 values ({@code fill_random.cu}): test and benchmark data. */
public final class RandomFillKernels {
    private static final int BLOCKS = 1024;
    private final CUfunction int8;
    private final CUfunction fp16;

    public RandomFillKernels(CudaKernels kernels) {
        this.int8 = kernels.function("br_fill_random_i8");
        this.fp16 = kernels.function("br_fill_random_f16");
    }

    /** {@code count} INT8 codes, uniform in [-127, 127]. */
    public void int8(long out, long count, long seed, CudaStream stream) {
        KernelLaunch.launch(int8, BLOCKS, 1, RowKernels.ELEMENT_BLOCK_THREADS, 0, stream, out, count, seed);
    }

    /** {@code count} FP16 values, uniform in [-scale, scale). */
    public void fp16(long out, long count, long seed, float scale, CudaStream stream) {
        KernelLaunch.launch(fp16, BLOCKS, 1, RowKernels.ELEMENT_BLOCK_THREADS, 0, stream, out, count, seed, scale);
    }
}
