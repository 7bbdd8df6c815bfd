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
 * <p>What the Vector API reaches here (JDK 25, AVX2, no AVX-512): x86 gets its int8 throughput from
 * vpmaddubsw/vpmaddwd (multiply and add adjacent pairs into wider lanes) or VNNI vpdpbusd, and the Vector API
 * exposes none of them; there is no dot-product or multiply-add-pairs operator. What is left:
 * <ul>
 *   <li>M &lt; {@link #PANEL_MIN_M} (decode): widen W bytes to shorts (B2S, vpmovsxbw), multiply
 *   by A (pre-widened once), add two products in a short (the [-127,127] assumption makes that safe), and
 *   fold short pairs into int accumulators with one shift and two adds (see {@link #dot1x4}). About 11
 *   vector ops per 32 MACs, roughly 35-45 GOP/s per core from cache; with the weights 4x smaller than FP32
 *   the decode GEMV ends up well ahead of the FP32 one. The obvious alternatives measured no better: B2I
 *   plus vpmulld (3 ops per 8 MACs), B2F plus FMA (same), and the "part 1" (upper half) B2S/S2I conversions
 *   ran ~20x slower (not intrinsified here), so the widening to int cannot use them.</li>
 *   <li>Larger M (compute-bound): widening costs are per element and per use, so a short-multiply kernel
 *   is capped well below the FP32 FMA rate. Instead, bytes are converted to FP32 once (A when packing the
 *   panels, each W strip once per K block) and the FP32 register-tiled FMA kernel does the work: every
 *   product (≤ 127²) and every partial sum over at most {@link #EXACT_K} terms is an integer below 2^24, so
 *   FP32 is exact, and the partial sums are flushed to int32 per K block. INT8 then runs at about the
 *   FP32 rate (the byte-to-float widening of W is the extra), i.e. the gain at large M is memory (4x
 *   smaller weights), not arithmetic.</li>
 * </ul>
 */
public final class Int8MatMul {
    private static final VectorSpecies<Short> SS = ShortVector.SPECIES_PREFERRED;
    private static final int LS = SS.length();
    /** Bytes that widen into one short vector (B2S doubles the width). */
    private static final VectorSpecies<Byte> SB = VectorSpecies.of(byte.class, VectorShape.forBitSize(LS * 8));
    /**
     * Same shape as {@link #SS}. Kept as the SPECIES_PREFERRED constant: with the same species obtained from
     * {@code VectorSpecies.of}, C2 (JDK 25) boxed the loop-carried accumulators of the dot kernel (~10x slower).
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
    static final int PANEL_MIN_M = Integer.getInteger("bitrelay.int8.panelMinM", 10);
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
        int kv = k - k % (2 * LS);
        // Touch-ahead (see dot1x4) needs four rows' worth of W to exist; tiny W just touches byte 0.
        boolean touchAhead = w.byteSize() >= 4L * kv + 64;
        CpuParallelism.forEach(tasks, t -> {
            int n0 = t * DOT_ROWS_PER_TASK;
            int n1 = Math.min(n, n0 + DOT_ROWS_PER_TASK);
            // A widened to shorts once per task; the weights are widened on the fly (each is used once per row of A).
            short[] aw = widenScratch(m * k);
            for (int p = 0; p < m * k; p++) {
                aw[p] = a.get(ValueLayout.JAVA_BYTE, p);
            }
            int[] sums = new int[5];
            for (int j = n0; j < n1; j += 4) {
                int rows = Math.min(4, n1 - j);
                long w0 = (long) j * k;
                // Rows past the end alias row j; their sums are computed and dropped.
                long w1 = rows > 1 ? w0 + k : w0;
                long w2 = rows > 2 ? w0 + 2L * k : w0;
                long w3 = rows > 3 ? w0 + 3L * k : w0;
                long next = touchAhead ? Math.min(w0 + 4L * k, w.byteSize() - 4L * kv) : 0;
                for (int i = 0; i < m; i++) {
                    // Only the first row of A touches ahead; for the others the group is already in cache.
                    dot1x4(aw, i * k, w, w0, w1, w2, w3, kv, sums, next, i == 0 && touchAhead ? 4 : 0);
                    for (int r = 0; r < rows; r++) {
                        int sum = sums[r];
                        long row = w0 + (long) r * k;
                        for (int p = kv; p < k; p++) {
                            sum += aw[i * k + p] * w.get(ValueLayout.JAVA_BYTE, row + p);
                        }
                        out.setAtIndex(I32, (long) i * n + j + r, sum);
                    }
                }
            }
        });
    }

    private static final ThreadLocal<short[]> WIDE_A = ThreadLocal.withInitial(() -> new short[0]);

    private static short[] widenScratch(int size) {
        short[] aw = WIDE_A.get();
        if (aw.length < size) {
            aw = new short[size];
            WIDE_A.set(aw);
        }
        return aw;
    }

    /**
     * Even short lanes (the low half of each int lane) get -32768 added; see {@link #dot1x4}.
     * Read through a local vector (not a static final vector) so C2 treats it as a plain loop invariant.
     */
    private static final short[] LOW_HALF_BIAS = new short[LS];

    static {
        for (int i = 0; i < LS; i += 2) {
            LOW_HALF_BIAS[i] = Short.MIN_VALUE;
        }
    }

    /**
     * sums[r] (r < 4) = aw[aOff, aOff+kv) · w[row r][0, kv) for the four rows starting at byte offsets w0..w3, the
     * row of A already widened to shorts, kv a multiple of 2L.
     *
     * <p>Per 2L bytes of a W row: widen (B2S), multiply in shorts, add the two halves' products (|sum| ≤
     * 32258, still a short), then fold the short pairs into int lanes. All lanes of one accumulator belong to
     * the same dot product, so the pair can be summed in any way: reinterpret the shorts as ints x = 2^16·hi + lo',
     * where lo' = lo + 32768 thanks to the bias, always in [0, 2^16). Then x >> 16 is exactly hi, and Σx
     * (wrapping) = 2^16·Σhi + Σlo + 32768·count, so Σhi + Σlo falls out after the loop. That is 4 vector ops
     * per pair instead of 5 with the usual shift-left/shift-right sign extension.
     *
     * <p>Touch-ahead: this loop does ~45 instructions per 128 weight bytes, so the reorder window holds only a
     * few cache-line misses at a time and the hardware prefetcher, retraining on every short 4-row group,
     * does not cover the gap. Two plain byte loads per step into the next group (from {@code next}, stepping
     * {@code touchStep}·p bytes: 4 to sweep the group, 0 to disable) pull it into cache while this one is
     * computed; measured 15-40% faster on the M=1 GEMV. Java has no prefetch instruction, hence real loads.
     *
     * <p>This method is deliberately nothing but the vector loop: with the tail and the stores in here too, C2
     * hits its inlining node budget inside the Vector API and boxes the accumulators (10x slower).
     */
    private static void dot1x4(short[] aw, int aOff, MemorySegment w, long w0, long w1, long w2, long w3, int kv,
                               int[] sums, long next, int touchStep) {
        ShortVector bias = ShortVector.fromArray(SS, LOW_HALF_BIAS, 0);
        int touched = 0;
        long gap = touchStep == 0 ? 0 : 64;
        IntVector r0 = IntVector.zero(SI), r1 = r0, r2 = r0, r3 = r0, h0 = r0, h1 = r0, h2 = r0, h3 = r0;
        int step = 2 * LS;
        for (int p = 0; p < kv; p += step) {
            long t = next + (long) touchStep * p;
            touched += w.get(ValueLayout.JAVA_BYTE, t) + w.get(ValueLayout.JAVA_BYTE, t + gap);
            ShortVector a0 = ShortVector.fromArray(SS, aw, aOff + p);
            ShortVector a1 = ShortVector.fromArray(SS, aw, aOff + p + LS);
            IntVector x0 = pairSum(w, w0 + p, a0, a1, bias);
            IntVector x1 = pairSum(w, w1 + p, a0, a1, bias);
            IntVector x2 = pairSum(w, w2 + p, a0, a1, bias);
            IntVector x3 = pairSum(w, w3 + p, a0, a1, bias);
            r0 = r0.add(x0);
            h0 = h0.add(x0.lanewise(VectorOperators.ASHR, 16));
            r1 = r1.add(x1);
            h1 = h1.add(x1.lanewise(VectorOperators.ASHR, 16));
            r2 = r2.add(x2);
            h2 = h2.add(x2.lanewise(VectorOperators.ASHR, 16));
            r3 = r3.add(x3);
            h3 = h3.add(x3.lanewise(VectorOperators.ASHR, 16));
        }
        sums[4] = touched; // keeps the touch loads alive (the array is per task: no shared cache line)
        // Σhi + Σlo = Σx - (2^16 - 1)·Σhi - 2^15·count, all mod 2^32.
        int offset = (SI.length() * (kv / step)) << 15;
        sums[0] = r0.sub(h0.mul(0xFFFF)).reduceLanes(VectorOperators.ADD) - offset;
        sums[1] = r1.sub(h1.mul(0xFFFF)).reduceLanes(VectorOperators.ADD) - offset;
        sums[2] = r2.sub(h2.mul(0xFFFF)).reduceLanes(VectorOperators.ADD) - offset;
        sums[3] = r3.sub(h3.mul(0xFFFF)).reduceLanes(VectorOperators.ADD) - offset;
    }

    /** w[off, off+2L) · (a0, a1), as biased short pairs reinterpreted as ints (see {@link #dot1x4}). */
    private static IntVector pairSum(MemorySegment w, long off, ShortVector a0, ShortVector a1, ShortVector bias) {
        return wide(w, off).mul(a0).add(wide(w, off + LS).mul(a1)).add(bias).reinterpretAsInts();
    }

    private static ShortVector wide(MemorySegment w, long off) {
        return (ShortVector) ByteVector.fromMemorySegment(SB, w, off, NATIVE).convertShape(VectorOperators.B2S, SS, 0);
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
                            Fp32MatMul.tile5(packed, pi * P * k + k0 * P, ws, kb, facc, s * mPad + pi * P, mPad,
                                    true);
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
