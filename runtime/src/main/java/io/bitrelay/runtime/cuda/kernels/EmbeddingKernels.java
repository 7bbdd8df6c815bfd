package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;

/**
 * The first stage's input embeddings on the device ({@code embed.cu}): token row (FP16) plus position row (FP32)
 * per row of a step, the token taken from the host's list or from tokens a sampling pass left on the device.
 */
public final class EmbeddingKernels {
    /** int32 words per row of the row table: host token, index into the sampled tokens (−1: none), position. */
    public static final int ROW_WORDS = 3;
    private final KernelLaunch embed;

    public EmbeddingKernels(CudaKernels kernels) {
        this.embed = kernels.launcher("br_embed_rows", 7);
    }

    /**
     * Writes {@code rows} FP32 rows of {@code width} to {@code hidden}.
     *
     * @param tokenTable    (vocab, width) FP16
     * @param positionTable (max positions + 2, width) FP32
     * @param rowTable      (rows, {@link #ROW_WORDS}) int32
     * @param sampled       int32 tokens on the device that rows with an index read; 0 when none does
     */
    public void embed(long tokenTable, long positionTable, long rowTable, long sampled, long hidden, int rows, int width,
                      int vocab, CudaStream stream) {
        RowKernels.checkShape(rows, width);
        embed.address(0, tokenTable).address(1, positionTable).address(2, rowTable).address(3, sampled).address(4, hidden)
                .integer(5, width).integer(6, vocab).launch(rows, 1, RowKernels.ROW_BLOCK_THREADS, 0, stream);
    }
}
