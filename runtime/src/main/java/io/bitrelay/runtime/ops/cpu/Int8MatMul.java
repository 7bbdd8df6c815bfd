package io.bitrelay.runtime.ops.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * INT8 {@code out[M,N] (int32) = a[M,K] (int8) · w[N,K]^T (int8)}, exact.
 *
 * <p>Assumption: every input byte is in [-127, 127] (symmetric quantization never emits -128), so a
 * product is at most 127² = 16129 in magnitude and the sum of two products (32258) still fits a short.
 * A -128 would not crash anything but could wrap that pair sum and give a wrong result.
 *
 * <p>What the Vector API reaches: it exposes no int8 dot-product instruction (AVX-VNNI {@code vpdpbusd},
 * {@code vpmaddubsw}/{@code vpmaddwd}), so every byte is widened (B2S, or B2F for the FP32-accumulated panel
 * path) before it is multiplied. At M = 1 the GEMV is memory-bound and the 4× smaller weights win (about 2–2.7×
 * our FP32 GEMV on this machine); once the GEMM is compute-bound (M = 256) the widening costs more than the
 * smaller operands save and INT8 runs at 0.5–0.85× our FP32 GEMM ({@code bitrelay bench gemm}).
 */
public final class Int8MatMul {
    private static final VectorSpecies<Short> SS = ShortVector.SPECIES_PREFERRED;
    private static final int LS = SS.length();
    /** Bytes that widen into one short vector (B2S doubles the width). */
    private static final VectorSpecies<Byte> SB = VectorSpecies.of(byte.class, VectorShape.forBitSize(LS * 8));
    /**
     * Same shape as {@link #SS}. Must be a SPECIES_* constant: a species from {@code VectorSpecies.of} is not
     * a compile-time constant to C2 and every loop-carried accumulator gets boxed (10x slower).
     */
    private static final VectorSpecies<Integer> SI = IntVector.SPECIES_PREFERRED;
    /** Bytes that widen into one float vector (B2F quadruples the width). */
    private static final VectorSpecies<Byte> SBF = VectorSpecies.of(byte.class,
            VectorShape.forBitSize(Fp32MatMul.L * 8));
    private static final int L = Fp32MatMul.L;
    private static final int P = Fp32MatMul.P;
    private static final int MR = Fp32MatMul.MR;
    /**
     * Longest K run summed in FP32 before it is flushed to int32: 1024·127² < 2^24, so every partial sum
     * is an integer FP32 represents exactly.
     */
    private static final int EXACT_K = 1024;
    static final int PANEL_MIN_M = Integer.getInteger("bitrelay.int8.panelMinM", 4);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private Int8MatMul() {
    }

    public static void matmul(MemorySegment a, MemorySegment w, MemorySegment out, int m, int n, int k) {
        if (m <= 0 || n <= 0) {
            return;
        }
        if (k < 0 || a.byteSize() < (long) m * k || w.byteSize() < (long) n * k || out.byteSize() < 4L * m * n) {
            throw new IllegalArgumentException("segments too small for m=" + m + " n=" + n + " k=" + k);
        }
        if (k == 0) {
            out.asSlice(0, 4L * m * n).fill((byte) 0);
        } else if (m < PANEL_MIN_M) {
            dotRows(a, w, out, m, n, k);
        } else {
            panels(a, w, out, m, n, k);
        }
    }

    // ---------------------------------------------------------------- small M: short products along K

    private static final int DOT_ROWS_PER_TASK = 256;

    private static void dotRows(MemorySegment a, MemorySegment w, MemorySegment out, int m, int n, int k) {
        int tasks = (n + DOT_ROWS_PER_TASK - 1) / DOT_ROWS_PER_TASK;
        CpuParallelism.forEach(tasks, t -> {
            int n0 = t * DOT_ROWS_PER_TASK;
            int n1 = Math.min(n, n0 + DOT_ROWS_PER_TASK);
            short[] aw = new short[k];
            for (int i = 0; i < m; i++) {
                for (int p = 0; p < k; p++) {
                    aw[p] = a.get(ValueLayout.JAVA_BYTE, (long) i * k + p);
                }
                for (int j = n0; j < n1; j += 2) {
                    dot1x2(aw, w, j, Math.min(2, n1 - j), out, (long) i * n, k);
                }
            }
        });
    }

    /**
     * out[row, j..j+rows) = a · w[j..j+rows) with a already widened to shorts. Two W rows, not four: the
     * bigger body trips C2's inlining node budget and the vectors get boxed, which is 20x slower.
     */
    private static void dot1x2(short[] aw, MemorySegment w, int j, int rows, MemorySegment out, long outRow, int k) {
        long w0 = (long) j * k;
        long w1 = rows > 1 ? w0 + k : w0;
        IntVector c0 = IntVector.zero(SI), c1 = c0;
        int step = 2 * LS;
        int kv = k - k % step;
        for (int p = 0; p < kv; p += step) {
            ShortVector a0 = ShortVector.fromArray(SS, aw, p);
            ShortVector a1 = ShortVector.fromArray(SS, aw, p + LS);
            c0 = widenAdd(c0, wide(w, w0 + p).mul(a0).add(wide(w, w0 + p + LS).mul(a1)));
            c1 = widenAdd(c1, wide(w, w1 + p).mul(a0).add(wide(w, w1 + p + LS).mul(a1)));
        }
        int s0 = c0.reduceLanes(VectorOperators.ADD);
        int s1 = c1.reduceLanes(VectorOperators.ADD);
        for (int p = kv; p < k; p++) {
            int x = aw[p];
            s0 += x * w.get(ValueLayout.JAVA_BYTE, w0 + p);
            s1 += x * w.get(ValueLayout.JAVA_BYTE, w1 + p);
        }
        out.setAtIndex(I32, outRow + j, s0);
        if (rows > 1) {
            out.setAtIndex(I32, outRow + j + 1, s1);
        }
    }

    private static ShortVector wide(MemorySegment w, long off) {
        return (ShortVector) ByteVector.fromMemorySegment(SB, w, off, NATIVE).convertShape(VectorOperators.B2S, SS, 0);
    }

    /**
     * acc += both shorts of every int lane of {@code s}, sign-extended. Lanes all belong to one dot product
     * here, so which int lane a short lands in does not matter and two shifts replace a real S2I widening
     * (whose upper half does not intrinsify).
     */
    private static IntVector widenAdd(IntVector acc, ShortVector s) {
        IntVector x = s.reinterpretAsInts();
        return acc.add(x.lanewise(VectorOperators.ASHR, 16))
                .add(x.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
    }

    // ---------------------------------------------------------------- larger M: exact FP32 panels

    private static final ThreadLocal<float[]> PACK = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> FACC = ThreadLocal.withInitial(
            () -> new float[Fp32MatMul.NC * Fp32MatMul.MC]);
    private static final ThreadLocal<int[]> IACC = ThreadLocal.withInitial(
            () -> new int[Fp32MatMul.NC * Fp32MatMul.MC]);
    private static final ThreadLocal<float[]> STRIP = ThreadLocal.withInitial(() -> new float[0]);

    private static void panels(MemorySegment a, MemorySegment w, MemorySegment out, int m, int n, int k) {
        int nc = Fp32MatMul.chunkRows(n);
        int chunks = (n + nc - 1) / nc;
        for (int m0 = 0; m0 < m; m0 += Fp32MatMul.MC) {
            int mb = Math.min(Fp32MatMul.MC, m - m0);
            int panelCount = (mb + P - 1) / P;
            float[] packed = packA(a, m0, mb, k, panelCount);
            int mPad = panelCount * P;
            int kc = Math.min(EXACT_K, (long) mPad * k * 4 <= 256 * 1024 ? k : Fp32MatMul.KC);
            int row0 = m0;
            CpuParallelism.forEach(chunks, c -> {
                float[] facc = FACC.get();
                int[] iacc = IACC.get();
                float[] ws = stripScratch(kc);
                int j0 = c * nc;
                int rowsInChunk = Math.min(nc, n - j0);
                int accLen = (rowsInChunk + MR - 1) / MR * MR * mPad;
                for (int k0 = 0; k0 < k; k0 += kc) {
                    int kb = Math.min(kc, k - k0);
                    for (int s = 0; s < rowsInChunk; s += MR) {
                        widenStrip(w, j0 + s, Math.min(MR, rowsInChunk - s), k, k0, kb, ws);
                        for (int pi = 0; pi < panelCount; pi++) {
                            Fp32MatMul.tile5(packed, pi * P * k + k0 * P, ws, kb, facc, s * mPad + pi * P, mPad, true);
                        }
                    }
                    flush(facc, iacc, accLen, k0 == 0);
                }
                scatter(iacc, mPad, out, row0, mb, j0, rowsInChunk, n);
            });
        }
    }

    private static float[] stripScratch(int kc) {
        float[] ws = STRIP.get();
        if (ws.length < MR * kc) {
            ws = new float[MR * kc];
            STRIP.set(ws);
        }
        return ws;
    }

    /** ws[r·kb + p] = (float) w[j+r, k0+p]; missing tail rows are zero. */
    private static void widenStrip(MemorySegment w, int j, int rows, int k, int k0, int kb, float[] ws) {
        int kv = kb - kb % L;
        for (int r = 0; r < MR; r++) {
            int dst = r * kb;
            if (r >= rows) {
                java.util.Arrays.fill(ws, dst, dst + kb, 0f);
                continue;
            }
            long src = (long) (j + r) * k + k0;
            for (int p = 0; p < kv; p += L) {
                ((FloatVector) ByteVector.fromMemorySegment(SBF, w, src + p, NATIVE)
                        .convertShape(VectorOperators.B2F, Fp32MatMul.S, 0)).intoArray(ws, dst + p);
            }
            for (int p = kv; p < kb; p++) {
                ws[dst + p] = w.get(ValueLayout.JAVA_BYTE, src + p);
            }
        }
    }

    /** The FP32 partial sums are exact integers (see EXACT_K); fold them into the int32 accumulators. */
    private static void flush(float[] facc, int[] iacc, int len, boolean first) {
        int v = len - len % L;
        for (int i = 0; i < v; i += L) {
            IntVector x = (IntVector) FloatVector.fromArray(Fp32MatMul.S, facc, i)
                    .convertShape(VectorOperators.F2I, IntVector.SPECIES_PREFERRED, 0);
            (first ? x : x.add(IntVector.fromArray(IntVector.SPECIES_PREFERRED, iacc, i))).intoArray(iacc, i);
        }
        for (int i = v; i < len; i++) {
            iacc[i] = (first ? 0 : iacc[i]) + (int) facc[i];
        }
    }

    /** Same layout as the FP32 panel path, bytes widened to (exact) floats. */
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
            for (int r = 0; r < P; r++) {
                int row = pi * P + r;
                long src = (long) (m0 + row) * k;
                for (int p = 0; p < k; p++) {
                    dst[base + p * P + r] = row < mb ? a.get(ValueLayout.JAVA_BYTE, src + p) : 0f;
                }
            }
        });
        return packed;
    }

    private static void scatter(int[] acc, int mPad, MemorySegment out, int row0, int mb, int j0, int cols, int n) {
        for (int i = 0; i < mb; i++) {
            long dst = (long) (row0 + i) * n + j0;
            for (int r = 0; r < cols; r++) {
                out.setAtIndex(I32, dst + r, acc[r * mPad + i]);
            }
        }
    }
}
