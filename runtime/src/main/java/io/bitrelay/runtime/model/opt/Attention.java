package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.ops.cpu.CpuParallelism;
import io.bitrelay.runtime.ops.cpu.VectorMath;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
        CpuParallelism.forEach(tasks.size(), t -> run(tasks.get(t), localLayer, q, out, hidden, headDim));
    }

    private static void run(Task task, int localLayer, MemorySegment q, MemorySegment out, int hidden, int headDim) {
        MemorySegment keys = task.cache().keys(localLayer);
        MemorySegment values = task.cache().values(localLayer);
        int headOffset = task.head() * headDim;
        float[] scores = new float[task.past() + task.endRow()];
        for (int i = task.firstRow(); i < task.endRow(); i++) {
            long row = task.rowBase() + i;
            long qOffset = row * hidden + headOffset;
            int visible = task.past() + i + 1;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < visible; j++) {
                float score = VectorMath.dot(q, qOffset, keys, (long) j * hidden + headOffset, headDim);
                scores[j] = score;
                max = Math.max(max, score);
            }
            float sum = 0f;
            for (int j = 0; j < visible; j++) {
                float e = (float) Math.exp(scores[j] - max);
                scores[j] = e;
                sum += e;
            }
            long outOffset = row * hidden + headOffset;
            out.asSlice(outOffset * Float.BYTES, (long) headDim * Float.BYTES).fill((byte) 0);
            float inverseSum = 1f / sum;
            for (int j = 0; j < visible; j++) {
                VectorMath.axpy(scores[j] * inverseSum, values, (long) j * hidden + headOffset, out, outOffset, headDim);
            }
        }
    }

    /** Copies the step's keys and values of one chunk into its cache at positions [past, past + rows). */
    static void store(SequenceChunk chunk, int localLayer, MemorySegment k, MemorySegment v, int rowBase, int hidden) {
        long rowBytes = (long) hidden * Float.BYTES;
        long src = rowBase * rowBytes;
        long dst = chunk.cache().length() * rowBytes;
        long bytes = chunk.length() * rowBytes;
        MemorySegment.copy(k, src, chunk.cache().keys(localLayer), dst, bytes);
        MemorySegment.copy(v, src, chunk.cache().values(localLayer), dst, bytes);
    }

    static void scale(MemorySegment x, long elements, float factor) {
        for (long i = 0; i < elements; i++) {
            x.setAtIndex(ValueLayout.JAVA_FLOAT, i, x.getAtIndex(ValueLayout.JAVA_FLOAT, i) * factor);
        }
    }
}
