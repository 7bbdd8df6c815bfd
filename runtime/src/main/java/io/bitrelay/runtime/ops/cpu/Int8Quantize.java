package io.bitrelay.runtime.ops.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Symmetric INT8 quantization of FP32 rows and the dequantization of {@link Int8MatMul}'s int32 results.
 * Values map to [-127, 127] (never -128, which {@link Int8MatMul} relies on) with round-half-to-even,
 * as torch.round does: {@code q = clamp(rint(x / scale), -127, 127)}.
 */
public final class Int8Quantize {
    /** Largest magnitude of a symmetric INT8 code. */
    public static final int QMAX = 127;
    /** Rows per parallel task: these loops are memory-bound and cheap next to the matmul. */
    private static final int ROWS_PER_TASK = 32;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;

    private Int8Quantize() {
    }

    /**
     * Each row on its own scale, {@code absmax(row) / 127}: per-token activations, or per-output-channel
     * weights (a weight row is an output channel). An all-zero row gets scale 1 (codes all 0).
     *
     * @param x      (rows, cols) FP32
     * @param q      (rows, cols) INT8 out
     * @param scales (rows) out: the scale each row was quantized with
     */
    public static void quantizeRows(MemorySegment x, int rows, int cols, MemorySegment q, float[] scales) {
        CpuParallelism.forEach(tasks(rows), t -> {
            for (int i = t * ROWS_PER_TASK, end = Math.min(rows, i + ROWS_PER_TASK); i < end; i++) {
                long base = (long) i * cols;
                float absMax = 0f;
                for (int j = 0; j < cols; j++) {
                    absMax = Math.max(absMax, Math.abs(x.getAtIndex(F32, base + j)));
                }
                float scale = scaleFor(absMax);
                scales[i] = scale;
                quantizeRow(x, q, base, cols, scale);
            }
        });
    }

    /** Every element on one scale (per-tensor static); values beyond {@code 127 · scale} are clipped. */
    public static void quantizeWithScale(MemorySegment x, int rows, int cols, float scale, MemorySegment q) {
        CpuParallelism.forEach(tasks(rows), t -> {
            for (int i = t * ROWS_PER_TASK, end = Math.min(rows, i + ROWS_PER_TASK); i < end; i++) {
                quantizeRow(x, q, (long) i * cols, cols, scale);
            }
        });
    }

    /** The scale that maps {@code absMax} onto 127; 1 for an all-zero range so nothing divides by zero. */
    public static float scaleFor(float absMax) {
        return absMax > 0f ? absMax / QMAX : 1f;
    }

    private static void quantizeRow(MemorySegment x, MemorySegment q, long base, int cols, float scale) {
        for (int j = 0; j < cols; j++) {
            float code = (float) Math.rint(x.getAtIndex(F32, base + j) / scale);
            q.set(ValueLayout.JAVA_BYTE, base + j, (byte) Math.clamp(code, -QMAX, QMAX));
        }
    }

    /**
     * out[i, j] = acc[i, j] · rowScales[i] · colScales[j] + bias[j]: the int32 product of a quantized
     * activation row (scale rowScales[i]) and a quantized weight row (scale colScales[j]) back to FP32.
     *
     * @param acc  (rows, cols) int32
     * @param bias (cols) FP32, or null
     * @param out  (rows, cols) FP32
     */
    public static void dequantize(MemorySegment acc, int rows, int cols, float[] rowScales, float[] colScales,
                                  MemorySegment bias, MemorySegment out) {
        CpuParallelism.forEach(tasks(rows), t -> {
            for (int i = t * ROWS_PER_TASK, end = Math.min(rows, i + ROWS_PER_TASK); i < end; i++) {
                long base = (long) i * cols;
                float rowScale = rowScales[i];
                for (int j = 0; j < cols; j++) {
                    float v = acc.getAtIndex(I32, base + j) * (rowScale * colScales[j]);
                    out.setAtIndex(F32, base + j, bias == null ? v : v + bias.getAtIndex(F32, j));
                }
            }
        });
    }

    private static int tasks(int rows) {
        return (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    }
}
