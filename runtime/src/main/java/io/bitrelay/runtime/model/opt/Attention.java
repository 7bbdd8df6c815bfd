package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.ops.cpu.CpuParallelism;
import io.bitrelay.runtime.ops.cpu.VectorMath;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Causal multi-head self-attention over each sequence's KV cache. Queries arrive already scaled by
 * 1/sqrt(headDim), as OPTAttention scales q_proj's output; softmax is FP32 with the row max subtracted.
 */
final class Attention {
    /** Query rows per task: enough work per task to amortise the fork, small enough to balance two cores. */
    private static final int ROWS_PER_TASK = 16;

    private Attention() {
    }

    private record Task(int rowBase, int firstRow, int endRow, int head, KvCache cache, int past) {
    }

    /**
     * @param q   (rows, hidden) scaled queries of every chunk, chunk after chunk
     * @param out (rows, hidden) attention output, heads concatenated
     */
    static void forward(List<SequenceChunk> chunks, int localLayer, MemorySegment q, MemorySegment out,
                        int numHeads, int headDim) {
        List<Task> tasks = new ArrayList<>();
        int rowBase = 0;
        for (SequenceChunk chunk : chunks) {
            int past = chunk.cache().length();
            for (int head = 0; head < numHeads; head++) {
                for (int first = 0; first < chunk.length(); first += ROWS_PER_TASK) {
                    int end = Math.min(chunk.length(), first + ROWS_PER_TASK);
                    tasks.add(new Task(rowBase, first, end, head, chunk.cache(), past));
                }
            }
            rowBase += chunk.length();
        }
        int hidden = numHeads * headDim;
        for (SequenceChunk chunk : chunks) {
            KvRows keys = chunk.cache().keyRows(localLayer);
            if (keys.hidden != hidden || (chunk.cache().precision().quantized() && keys.headDim != headDim)) {
                throw new IllegalArgumentException("cache of " + keys.numHeads + " × " + keys.headDim
                        + " channels does not match attention's " + numHeads + " heads × " + headDim);
            }
        }
        CpuParallelism.forEach(tasks.size(), t -> run(tasks.get(t), localLayer, q, out, hidden, headDim));
    }

    /**
     * One head of a block of query rows. Keys (then values) are read position by position, each once for the
     * whole block, so a quantized cache dequantizes each position once per block rather than once per query
     * row; every row still sees its positions in ascending order, so an FP32 cache computes exactly what a
     * row-by-row loop would.
     */
    private static void run(Task task, int localLayer, MemorySegment q, MemorySegment out, int hidden, int headDim) {
        KvRows keys = task.cache().keyRows(localLayer);
        KvRows values = task.cache().valueRows(localLayer);
        KvRows.HeadReader reader = new KvRows.HeadReader(headDim);
        int headOffset = task.head() * headDim;
        int past = task.past();
        int firstRow = task.firstRow();
        int blockRows = task.endRow() - firstRow;
        int span = past + task.endRow(); // positions the block's last row sees
        float[] scores = new float[blockRows * span]; // (blockRows, span): scores, then exp(score − max)
        float[] inverseSums = new float[blockRows];
        for (int j = 0; j < span; j++) {
            keys.read(j, task.head(), reader);
            for (int i = Math.max(firstRow, j - past); i < task.endRow(); i++) { // rows with j ≤ past + i
                long qOffset = (task.rowBase() + i) * (long) hidden + headOffset;
                scores[(i - firstRow) * span + j] = VectorMath.dot(q, qOffset, reader.segment, reader.offset, headDim);
            }
        }
        for (int i = firstRow; i < task.endRow(); i++) {
            int base = (i - firstRow) * span;
            int visible = past + i + 1;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < visible; j++) {
                max = Math.max(max, scores[base + j]);
            }
            float sum = 0f;
            for (int j = 0; j < visible; j++) {
                float e = (float) Math.exp(scores[base + j] - max);
                scores[base + j] = e;
                sum += e;
            }
            inverseSums[i - firstRow] = 1f / sum;
            long outOffset = (task.rowBase() + i) * (long) hidden + headOffset;
            out.asSlice(outOffset * Float.BYTES, (long) headDim * Float.BYTES).fill((byte) 0);
        }
        for (int j = 0; j < span; j++) {
            values.read(j, task.head(), reader);
            for (int i = Math.max(firstRow, j - past); i < task.endRow(); i++) {
                long outOffset = (task.rowBase() + i) * (long) hidden + headOffset;
                float p = scores[(i - firstRow) * span + j] * inverseSums[i - firstRow];
                VectorMath.axpy(p, reader.segment, reader.offset, out, outOffset, headDim);
            }
        }
    }

    /**
     * Stores the step's keys and values of one chunk into its cache at positions [past, past + rows), in the
     * cache's precision. Attention then reads them back from the cache for every row of the step, its own
     * position included, so a prefill sees the same (quantized) keys and values a decode would.
     */
    static void store(SequenceChunk chunk, int localLayer, MemorySegment k, MemorySegment v, int rowBase, int hidden) {
        KvCache cache = chunk.cache();
        cache.keyRows(localLayer).write(k, rowBase, chunk.length(), cache.length());
        cache.valueRows(localLayer).write(v, rowBase, chunk.length(), cache.length());
    }
}
