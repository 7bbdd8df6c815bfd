package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;
import io.bitrelay.runtime.generate.SamplingRows;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One token per row of FP16 logits on the device ({@code sampling.cu}, CPU reference
 * {@link io.bitrelay.runtime.generate.DeviceSamplingReference}): greedy or sampled with temperature, top-k and
 * top-p, from per-row parameters packed by {@link #pack}. Device addresses.
 */
public final class SamplingKernels {
    /** Bytes of one row's parameters, the kernel's {@code BrSampleRow}. */
    public static final int PARAMS_BYTES = 32;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED;

    private final KernelLaunch sample;

    public SamplingKernels(CudaKernels kernels) {
        this.sample = kernels.launcher("br_sample_f16", 5);
    }

    /**
     * Writes rows {@code from .. from + count - 1} of {@code rows} in the kernel's layout (seed, counter,
     * temperature, topK, topP, reserved) at the start of {@code target}, which must hold {@code count ·}
     * {@link #PARAMS_BYTES} bytes.
     */
    public static void pack(SamplingRows rows, int from, int count, MemorySegment target) {
        if (from < 0 || count < 0 || from + count > rows.count()) {
            throw new IllegalArgumentException("rows " + from + ".." + (from + count - 1) + " of " + rows.count()
                    + " sampling rows");
        }
        if (target.byteSize() < (long) count * PARAMS_BYTES) {
            throw new IllegalArgumentException(count + " sampling rows need " + (long) count * PARAMS_BYTES
                    + " bytes, the buffer has " + target.byteSize());
        }
        for (int r = 0; r < count; r++) {
            long at = (long) r * PARAMS_BYTES;
            int row = from + r;
            target.set(LONG, at, rows.seed(row));
            target.set(LONG, at + 8, rows.counter(row));
            target.set(FLOAT, at + 16, rows.temperature(row));
            target.set(INT, at + 20, rows.topK(row));
            target.set(FLOAT, at + 24, rows.topP(row));
            target.set(INT, at + 28, 0);
        }
    }

    /**
     * @param logits   (rows, vocab) FP16
     * @param params   (rows) packed parameters
     * @param tokens   (rows) int32 out
     * @param logprobs (rows) FP32 out: log-softmax of the raw logits at the token; 0 for none
     */
    public void sample(long logits, int rows, int vocab, long params, long tokens, long logprobs, CudaStream stream) {
        RowKernels.checkShape(rows, vocab);
        sample.address(0, logits).integer(1, vocab).address(2, params).address(3, tokens).address(4, logprobs)
                .launch(rows, 1, RowKernels.WIDE_ROW_BLOCK_THREADS, 0, stream);
    }
}
