package io.bitrelay.runtime.ops.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
 */
public final class Int8MatMul {
    private static final VectorSpecies<Short> SS = ShortVector.SPECIES_PREFERRED;
    private static final int LS = SS.length();
    /** Bytes that widen into one short vector. */
    private static final VectorSpecies<Byte> SB = VectorSpecies.of(byte.class, VectorShape.forBitSize(LS * 8));
    private static final VectorSpecies<Integer> SI = IntVector.SPECIES_PREFERRED;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;

    private Int8MatMul() {
    }

    public static void matmul(MemorySegment a, MemorySegment w, MemorySegment out, int m, int n, int k) {
        if (m <= 0 || n <= 0) {
            return;
        }
        if (k < 0 || a.byteSize() < (long) m * k || w.byteSize() < (long) n * k || out.byteSize() < 4L * m * n) {
            throw new IllegalArgumentException("segments too small for m=" + m + " n=" + n + " k=" + k);
        }
        dotRows(a, w, out, m, n, k);
    }

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
                for (int j = n0; j < n1; j += 4) {
                    dot1x4(aw, w, j, Math.min(4, n1 - j), out, (long) i * n, k);
                }
            }
        });
    }

    private static ShortVector wide(MemorySegment w, long off) {
        return (ShortVector) ByteVector.fromMemorySegment(SB, w, off, java.nio.ByteOrder.nativeOrder())
                .convertShape(VectorOperators.B2S, SS, 0);
    }

    /** Adds the two int halves of each short pair of {@code s} to {@code acc}. */
    private static IntVector widenAdd(IntVector acc, ShortVector s) {
        IntVector x = s.reinterpretAsInts();
        return acc.add(x.lanewise(VectorOperators.ASHR, 16))
                .add(x.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
    }

    private static void dot1x4(short[] aw, MemorySegment w, int j, int rows, MemorySegment out, long outRow, int k) {
        long w0 = (long) j * k;
        long w1 = rows > 1 ? w0 + k : w0;
        long w2 = rows > 2 ? w0 + 2L * k : w0;
        long w3 = rows > 3 ? w0 + 3L * k : w0;
        IntVector c0 = IntVector.zero(SI), c1 = c0, c2 = c0, c3 = c0;
        int step = 2 * LS;
        int kv = k - k % step;
        for (int p = 0; p < kv; p += step) {
            ShortVector a0 = ShortVector.fromArray(SS, aw, p);
            ShortVector a1 = ShortVector.fromArray(SS, aw, p + LS);
            c0 = widenAdd(c0, wide(w, w0 + p).mul(a0).add(wide(w, w0 + p + LS).mul(a1)));
            c1 = widenAdd(c1, wide(w, w1 + p).mul(a0).add(wide(w, w1 + p + LS).mul(a1)));
            c2 = widenAdd(c2, wide(w, w2 + p).mul(a0).add(wide(w, w2 + p + LS).mul(a1)));
            c3 = widenAdd(c3, wide(w, w3 + p).mul(a0).add(wide(w, w3 + p + LS).mul(a1)));
        }
        int s0 = c0.reduceLanes(VectorOperators.ADD), s1 = c1.reduceLanes(VectorOperators.ADD);
        int s2 = c2.reduceLanes(VectorOperators.ADD), s3 = c3.reduceLanes(VectorOperators.ADD);
        for (int p = kv; p < k; p++) {
            int x = aw[p];
            s0 += x * w.get(ValueLayout.JAVA_BYTE, w0 + p);
            s1 += x * w.get(ValueLayout.JAVA_BYTE, w1 + p);
            s2 += x * w.get(ValueLayout.JAVA_BYTE, w2 + p);
            s3 += x * w.get(ValueLayout.JAVA_BYTE, w3 + p);
        }
        out.setAtIndex(I32, outRow + j, s0);
        if (rows > 1) out.setAtIndex(I32, outRow + j + 1, s1);
        if (rows > 2) out.setAtIndex(I32, outRow + j + 2, s2);
        if (rows > 3) out.setAtIndex(I32, outRow + j + 3, s3);
    }
}
