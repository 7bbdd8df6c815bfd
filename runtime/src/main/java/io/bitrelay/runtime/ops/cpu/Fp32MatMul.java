package io.bitrelay.runtime.ops.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * FP32 {@code out[M,N] = a[M,K] · w[N,K]^T (+ bias[N])} with the Vector API; w in nn.Linear layout, all
 * segments row-major in native order. Correct for any m, n, k (tails are handled, k may be 0).
 *
 * <p>Two kernels, picked by M:
 * <ul>
 *   <li>M &lt; {@link #PANEL_MIN_M} (decode): dot products along K, four W rows at a time, each block of four
 *   rows reused from cache by every row of A. The weights are streamed from memory exactly once and that
 *   stream is the whole cost at M=1.</li>
 *   <li>Larger M: A is packed (transposed) into panels of {@code P = 2·L} rows so one K step of a panel is
 *   two vector loads, and each weight element is broadcast against them: a 5×P register tile of 10
 *   accumulators, 7 loads per 10 FMAs. Packing A rather than W matters: A is the small operand
 *   (activations); transposing W on every call would cost as much as the whole product at M=16. W strips
 *   are copied (not transposed) to a heap scratch first, see {@link #copyStrip}. K is blocked (KC) so the
 *   packed A block stays in L2 while all the weight strips of a task pass over it; results accumulate in a
 *   per-task transposed block that is written to {@code out} once.</li>
 * </ul>
 * Work is split over W rows (N) only, so tasks never share output and scale over {@link CpuParallelism}.
 * No weight pre-packing is needed: the per-call work on W is one bulk copy, which is cheap next to the FMAs.
 */
public final class Fp32MatMul {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    /** Rows of the packed A panel: two vectors. */
    static final int P = 2 * L;
    /** Weight rows per register tile. */
    static final int MR = 5;
    /**
     * K block of the panel path. The packed A block ({@code MC × KC} floats) is revisited by every W strip
     * of a task, so it should stay near L2; longer blocks mean longer contiguous reads of each W row, which
     * is what limited KC = 128 (512 measured best of 128..1024 at M = 256).
     */
    static final int KC = 512;
    /** From this M on the packed-panel kernel wins over streaming dot products. */
    static final int PANEL_MIN_M = Integer.getInteger("bitrelay.fp32.panelMinM", 8);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private static final ThreadLocal<float[]> PACK = ThreadLocal.withInitial(() -> new float[0]);

    private Fp32MatMul() {
    }

    public static void matmul(MemorySegment a, MemorySegment w, MemorySegment bias, MemorySegment out,
                              int m, int n, int k) {
        if (m <= 0 || n <= 0) {
            return;
        }
        checkSizes(a, w, bias, out, m, n, k);
        if (k == 0) {
            // Empty sum: the panel path never enters its K loop, so settle it here.
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    store(out, bias, (long) i * n, j, 0f);
                }
            }
        } else if (m < PANEL_MIN_M) {
            dotRows(a, w, bias, out, m, n, k);
        } else {
            panels(a, w, bias, out, m, n, k);
        }
    }

    static void checkSizes(MemorySegment a, MemorySegment w, MemorySegment bias, MemorySegment out,
                           int m, int n, int k) {
        if (k < 0 || a.byteSize() < 4L * m * k || w.byteSize() < 4L * n * k || out.byteSize() < 4L * m * n
                || (bias != null && bias.byteSize() < 4L * n)) {
            throw new IllegalArgumentException("segments too small for m=" + m + " n=" + n + " k=" + k);
        }
    }

    // ---------------------------------------------------------------- small M: dot products along K

    /** Rows of W per dot-product task; large enough to amortise the fork, small enough to balance two cores. */
    private static final int DOT_ROWS_PER_TASK = 256;

    private static void dotRows(MemorySegment a, MemorySegment w, MemorySegment bias, MemorySegment out,
                                int m, int n, int k) {
        int tasks = (n + DOT_ROWS_PER_TASK - 1) / DOT_ROWS_PER_TASK;
        CpuParallelism.forEach(tasks, t -> {
            int n0 = t * DOT_ROWS_PER_TASK;
            int n1 = Math.min(n, n0 + DOT_ROWS_PER_TASK);
            // W rows in fours, read once from memory and then reused from cache by each row of A.
            for (int j = n0; j < n1; j += 4) {
                int rows = Math.min(4, n1 - j);
                for (int i = 0; i < m; i++) {
                    dot1x4(a, (long) i * k, w, j, rows, bias, out, (long) i * n, k);
                }
            }
        });
    }

    /** out[row, j..j+rows) = a[row] · w[j..j+rows); missing rows (rows < 4) alias row j and are not stored. */
    private static void dot1x4(MemorySegment a, long aRow, MemorySegment w, int j, int rows,
                               MemorySegment bias, MemorySegment out, long outRow, int k) {
        long stride = 4L * k;
        long w0 = j * stride;
        long w1 = rows > 1 ? w0 + stride : w0;
        long w2 = rows > 2 ? w0 + 2 * stride : w0;
        long w3 = rows > 3 ? w0 + 3 * stride : w0;
        long ab = 4L * aRow;
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0;
        int kv = k - k % L;
        for (int p = 0; p < kv; p += L) {
            long off = 4L * p;
            FloatVector av = FloatVector.fromMemorySegment(S, a, ab + off, NATIVE);
            c0 = FloatVector.fromMemorySegment(S, w, w0 + off, NATIVE).fma(av, c0);
            c1 = FloatVector.fromMemorySegment(S, w, w1 + off, NATIVE).fma(av, c1);
            c2 = FloatVector.fromMemorySegment(S, w, w2 + off, NATIVE).fma(av, c2);
            c3 = FloatVector.fromMemorySegment(S, w, w3 + off, NATIVE).fma(av, c3);
        }
        float s0 = VectorMath.sumLanes(c0), s1 = VectorMath.sumLanes(c1);
        float s2 = VectorMath.sumLanes(c2), s3 = VectorMath.sumLanes(c3);
        for (int p = kv; p < k; p++) {
            long off = 4L * p;
            float x = a.get(F32, ab + off);
            s0 += x * w.get(F32, w0 + off);
            s1 += x * w.get(F32, w1 + off);
            s2 += x * w.get(F32, w2 + off);
            s3 += x * w.get(F32, w3 + off);
        }
        store(out, bias, outRow, j, s0);
        if (rows > 1) {
            store(out, bias, outRow, j + 1, s1);
        }
        if (rows > 2) {
            store(out, bias, outRow, j + 2, s2);
        }
        if (rows > 3) {
            store(out, bias, outRow, j + 3, s3);
        }
    }

    private static void store(MemorySegment out, MemorySegment bias, long outRow, int j, float v) {
        out.setAtIndex(F32, outRow + j, bias == null ? v : v + bias.getAtIndex(F32, j));
    }

    // ---------------------------------------------------------------- larger M: packed A panels

    /** Rows of A per outer block; its packed K-block ({@code MC × KC} floats) is what stays in L2. */
    static final int MC = 256;
    /** Most W rows per task; the task's transposed result block is {@code NC × MC} floats. */
    static final int NC = 120;

    private static final ThreadLocal<float[]> ACC = ThreadLocal.withInitial(() -> new float[NC * MC]);

    private static void panels(MemorySegment a, MemorySegment w, MemorySegment bias, MemorySegment out,
                               int m, int n, int k) {
        int nc = chunkRows(n);
        int chunks = (n + nc - 1) / nc;
        for (int m0 = 0; m0 < m; m0 += MC) {
            int mb = Math.min(MC, m - m0);
            int panelCount = (mb + P - 1) / P;
            float[] packed = packA(a, m0, mb, k, panelCount);
            int mPad = panelCount * P;
            int row0 = m0;
            // A whole packed A that fits L2 needs no K blocking: then each weight strip is copied once and
            // swept over the full K, instead of re-visiting the accumulators every KC steps.
            int kc = (long) mPad * k * 4 <= 256 * 1024 ? k : KC;
            CpuParallelism.forEach(chunks, c -> {
                float[] acc = ACC.get();
                float[] ws = stripScratch(kc);
                int j0 = c * nc;
                int rowsInChunk = Math.min(nc, n - j0);
                for (int k0 = 0; k0 < k; k0 += kc) {
                    int kb = Math.min(kc, k - k0);
                    for (int s = 0; s < rowsInChunk; s += MR) {
                        int rows = Math.min(MR, rowsInChunk - s);
                        copyStrip(w, j0 + s, rows, k, k0, kb, ws);
                        for (int pi = 0; pi < panelCount; pi++) {
                            tile5(packed, pi * P * k + k0 * P, ws, kb, acc, s * mPad + pi * P, mPad, k0 == 0);
                        }
                    }
                }
                scatter(acc, mPad, out, bias, row0, mb, j0, rowsInChunk, n);
            });
        }
    }

    /**
     * W rows per task: enough tasks for work stealing to even out the cores (one of which may be busy with
     * something else), a multiple of MR so only the last strip of the last task is short.
     */
    static int chunkRows(int n) {
        int perTask = (n + CpuParallelism.threads() * 4 - 1) / (CpuParallelism.threads() * 4);
        return Math.clamp((perTask + MR - 1) / MR * MR, MR, NC);
    }

    private static final ThreadLocal<float[]> STRIP = ThreadLocal.withInitial(() -> new float[0]);

    private static float[] stripScratch(int kc) {
        float[] ws = STRIP.get();
        if (ws.length < MR * kc) {
            ws = new float[MR * kc];
            STRIP.set(ws);
        }
        return ws;
    }

    /**
     * ws[r·kb + p] = w[j+r, k0+p]. Broadcasting straight from the off-heap segment costs a bounds-checked
     * scalar access per element and halves the kernel's rate; a bulk copy to the heap per strip is cheap.
     * Missing tail rows are zero.
     */
    private static void copyStrip(MemorySegment w, int j, int rows, int k, int k0, int kb, float[] ws) {
        for (int r = 0; r < MR; r++) {
            if (r < rows) {
                MemorySegment.copy(w, F32, 4L * ((long) (j + r) * k + k0), ws, r * kb, kb);
            } else {
                java.util.Arrays.fill(ws, r * kb, (r + 1) * kb, 0f);
            }
        }
    }

    /**
     * Panel pi holds rows [m0+pi·P, m0+pi·P+P) of A transposed: {@code packed[pi·P·K + p·P + r]}; padding
     * rows are zero. Per call and per thread scratch, reused across calls.
     */
    private static float[] packA(MemorySegment a, int m0, int mb, int k, int panelCount) {
        int size = panelCount * P * k;
        float[] packed = PACK.get();
        if (packed.length < size) {
            packed = new float[size];
            PACK.set(packed);
        }
        float[] dst = packed;
        CpuParallelism.forEach(panelCount, pi -> {
            int base = pi * P * k;
            float[] source = new float[k]; // one bulk copy per row, not k segment accesses (see VectorMath.layerNormRow)
            for (int r = 0; r < P; r++) {
                int row = pi * P + r;
                if (row < mb) {
                    MemorySegment.copy(a, F32, (long) (m0 + row) * k * Float.BYTES, source, 0, k);
                    for (int p = 0; p < k; p++) {
                        dst[base + p * P + r] = source[p];
                    }
                } else {
                    for (int p = 0; p < k; p++) {
                        dst[base + p * P + r] = 0f;
                    }
                }
            }
        });
        return packed;
    }

    /**
     * acc[r·mPad + i] (+)= Σ_{p < kb} ws[r·kb + p] · ap[apStart + p·P + i] for r < 5, i < P: one K block of
     * five W rows against one packed A panel. The accumulator block is transposed (one row per W row) so
     * loading and storing it is two plain vector accesses per row. Five rows, not six: with 12 accumulators
     * C2 runs out of the 16 AVX2 registers and spills, which halves the rate.
     */
    static void tile5(float[] ap, int apStart, float[] ws, int kb, float[] acc, int accStart, int mPad,
                      boolean first) {
        int r0 = accStart, r1 = r0 + mPad, r2 = r1 + mPad, r3 = r2 + mPad, r4 = r3 + mPad;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41;
        if (first) {
            c00 = FloatVector.zero(S);
            c01 = c00;
            c10 = c00;
            c11 = c00;
            c20 = c00;
            c21 = c00;
            c30 = c00;
            c31 = c00;
            c40 = c00;
            c41 = c00;
        } else {
            c00 = FloatVector.fromArray(S, acc, r0);
            c01 = FloatVector.fromArray(S, acc, r0 + L);
            c10 = FloatVector.fromArray(S, acc, r1);
            c11 = FloatVector.fromArray(S, acc, r1 + L);
            c20 = FloatVector.fromArray(S, acc, r2);
            c21 = FloatVector.fromArray(S, acc, r2 + L);
            c30 = FloatVector.fromArray(S, acc, r3);
            c31 = FloatVector.fromArray(S, acc, r3 + L);
            c40 = FloatVector.fromArray(S, acc, r4);
            c41 = FloatVector.fromArray(S, acc, r4 + L);
        }
        int ai = apStart;
        int o1 = kb, o2 = 2 * kb, o3 = 3 * kb, o4 = 4 * kb;
        for (int p = 0; p < kb; p++, ai += P) {
            FloatVector a0 = FloatVector.fromArray(S, ap, ai);
            FloatVector a1 = FloatVector.fromArray(S, ap, ai + L);
            FloatVector b = FloatVector.broadcast(S, ws[p]);
            c00 = a0.fma(b, c00);
            c01 = a1.fma(b, c01);
            b = FloatVector.broadcast(S, ws[o1 + p]);
            c10 = a0.fma(b, c10);
            c11 = a1.fma(b, c11);
            b = FloatVector.broadcast(S, ws[o2 + p]);
            c20 = a0.fma(b, c20);
            c21 = a1.fma(b, c21);
            b = FloatVector.broadcast(S, ws[o3 + p]);
            c30 = a0.fma(b, c30);
            c31 = a1.fma(b, c31);
            b = FloatVector.broadcast(S, ws[o4 + p]);
            c40 = a0.fma(b, c40);
            c41 = a1.fma(b, c41);
        }
        c00.intoArray(acc, r0);
        c01.intoArray(acc, r0 + L);
        c10.intoArray(acc, r1);
        c11.intoArray(acc, r1 + L);
        c20.intoArray(acc, r2);
        c21.intoArray(acc, r2 + L);
        c30.intoArray(acc, r3);
        c31.intoArray(acc, r3 + L);
        c40.intoArray(acc, r4);
        c41.intoArray(acc, r4 + L);
    }

    /** out[row0+i, j0+r] = acc[r·mPad + i] (+ bias); walks out row by row so the writes are contiguous. */
    private static void scatter(float[] acc, int mPad, MemorySegment out, MemorySegment bias,
                                int row0, int mb, int j0, int cols, int n) {
        float[] b = null;
        if (bias != null) {
            b = new float[cols];
            MemorySegment.copy(bias, F32, (long) j0 * Float.BYTES, b, 0, cols);
        }
        float[] row = new float[cols];
        for (int i = 0; i < mb; i++) {
            for (int r = 0; r < cols; r++) {
                float v = acc[r * mPad + i];
                row[r] = b == null ? v : v + b[r];
            }
            MemorySegment.copy(row, 0, out, F32, ((long) (row0 + i) * n + j0) * Float.BYTES, cols);
        }
    }
}
