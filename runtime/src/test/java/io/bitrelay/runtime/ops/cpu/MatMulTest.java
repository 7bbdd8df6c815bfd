package io.bitrelay.runtime.ops.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

class MatMulTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final Arena ARENA = Arena.ofShared();

    @AfterAll
    static void close() {
        ARENA.close();
    }

    /** Odd and tail sizes on every axis, plus a few shapes large enough to cross the blocking boundaries. */
    static Stream<Arguments> shapes() {
        int[] ms = {1, 2, 3, 5, 6, 16, 17};
        int[] ns = {1, 3, 7, 33, 100};
        int[] ks = {1, 7, 33, 100};
        List<Arguments> all = new ArrayList<>();
        for (int m : ms) {
            for (int n : ns) {
                for (int k : ks) {
                    all.add(Arguments.of(m, n, k));
                }
            }
        }
        // Crosses KC / MC / NC / per-task row blocks, long K tails, panel counts > 1.
        all.add(Arguments.of(1, 517, 300));
        all.add(Arguments.of(4, 260, 513));
        all.add(Arguments.of(33, 257, 300));
        all.add(Arguments.of(40, 131, 1031));
        all.add(Arguments.of(300, 250, 130));
        all.add(Arguments.of(64, 64, 2048));
        all.add(Arguments.of(64, 70, 1100)); // K blocks 512, 512, 76
        all.add(Arguments.of(16, 20, 2100)); // INT8: FP32-exact blocks of 1024, 1024, 52
        all.add(Arguments.of(9, 13, 300)); // just below both panel thresholds
        all.add(Arguments.of(7, 10, 0));
        return all.stream();
    }

    @ParameterizedTest(name = "fp32 m={0} n={1} k={2}")
    @MethodSource("shapes")
    void fp32MatchesReference(int m, int n, int k) {
        SplittableRandom rnd = new SplittableRandom(31L * m + 7L * n + k);
        MemorySegment a = floats(rnd, (long) m * k);
        MemorySegment w = floats(rnd, (long) n * k);
        MemorySegment bias = floats(rnd, n);
        for (MemorySegment b : new MemorySegment[] {null, bias}) {
            MemorySegment expected = ARENA.allocate(4L * m * n);
            MemorySegment actual = ARENA.allocate(4L * m * n);
            ReferenceMatMul.matmulF32(a, w, b, expected, m, n, k);
            Fp32MatMul.matmul(a, w, b, actual, m, n, k);
            assertClose(expected, actual, m, n, k, "bias=" + (b != null));
        }
    }

    @ParameterizedTest(name = "int8 m={0} n={1} k={2}")
    @MethodSource("shapes")
    void int8MatchesReferenceExactly(int m, int n, int k) {
        SplittableRandom rnd = new SplittableRandom(17L * m + 5L * n + k);
        MemorySegment a = bytes(rnd, (long) m * k);
        MemorySegment w = bytes(rnd, (long) n * k);
        MemorySegment expected = ARENA.allocate(4L * m * n);
        MemorySegment actual = ARENA.allocate(4L * m * n);
        ReferenceMatMul.matmulI8(a, w, expected, m, n, k);
        Int8MatMul.matmul(a, w, actual, m, n, k);
        for (long i = 0; i < (long) m * n; i++) {
            assertEquals(expected.getAtIndex(I32, i), actual.getAtIndex(I32, i), "element " + i);
        }
    }

    /**
     * Worst case magnitudes: every product is ±127², the sum must not wrap in any short or int lane, and the
     * FP32-accumulated panel path must stay exact over its longest K block.
     */
    @ParameterizedTest(name = "int8 extremes m={0} k={1}")
    @CsvSource({"17, 4099", "12, 4000", "3, 4099"})
    void int8ExtremesAreExact(int m, int k) {
        int n = 9;
        for (byte value : new byte[] {127, -127}) {
            MemorySegment a = ARENA.allocate(m * k);
            MemorySegment w = ARENA.allocate(n * k);
            a.fill((byte) 127);
            w.fill(value);
            MemorySegment actual = ARENA.allocate(4L * m * n);
            Int8MatMul.matmul(a, w, actual, m, n, k);
            Int8MatMul.matmul(a.asSlice(0, k), w, actual.asSlice(0, 4L * n), 1, n, k);
            for (long i = 0; i < (long) m * n; i++) {
                assertEquals(127 * value * k, actual.getAtIndex(I32, i));
            }
        }
    }

    /** The decode path (m == 1) and the batched path must agree on the same row. */
    @Test
    void singleRowMatchesBatchedRow() {
        int m = 24, n = 301, k = 777;
        SplittableRandom rnd = new SplittableRandom(3);
        MemorySegment a = floats(rnd, (long) m * k);
        MemorySegment w = floats(rnd, (long) n * k);
        MemorySegment bias = floats(rnd, n);
        MemorySegment batched = ARENA.allocate(4L * m * n);
        Fp32MatMul.matmul(a, w, bias, batched, m, n, k);
        MemorySegment aq = bytes(rnd, (long) m * k);
        MemorySegment wq = bytes(rnd, (long) n * k);
        MemorySegment batchedQ = ARENA.allocate(4L * m * n);
        Int8MatMul.matmul(aq, wq, batchedQ, m, n, k);
        for (int row : new int[] {0, 5, m - 1}) {
            MemorySegment single = ARENA.allocate(4L * n);
            Fp32MatMul.matmul(a.asSlice(4L * row * k, 4L * k), w, bias, single, 1, n, k);
            assertClose(batched.asSlice(4L * row * n, 4L * n), single, 1, n, k, "row " + row);
            MemorySegment singleQ = ARENA.allocate(4L * n);
            Int8MatMul.matmul(aq.asSlice((long) row * k, k), wq, singleQ, 1, n, k);
            assertEquals(-1L, batchedQ.asSlice(4L * row * n, 4L * n).mismatch(singleQ), "int8 row " + row);
        }
    }

    private static void assertClose(MemorySegment expected, MemorySegment actual, int m, int n, int k, String what) {
        // Inputs are in [-1, 1), so Σ|a·w| <= k and FP32 summation in any order stays well inside k·1e-6;
        // a lost or doubled product (typically ~0.25) would not.
        for (long i = 0; i < (long) m * n; i++) {
            float e = expected.getAtIndex(F32, i);
            float x = actual.getAtIndex(F32, i);
            assertTrue(Math.abs(e - x) <= 1e-6 * k + 1e-5 * Math.abs(e),
                    what + " element " + i + ": expected " + e + " got " + x);
        }
    }

    private static MemorySegment floats(SplittableRandom rnd, long count) {
        MemorySegment s = ARENA.allocate(Math.max(4, 4 * count));
        for (long i = 0; i < count; i++) {
            s.setAtIndex(F32, i, (float) (rnd.nextDouble() * 2 - 1));
        }
        return s;
    }

    private static MemorySegment bytes(SplittableRandom rnd, long count) {
        MemorySegment s = ARENA.allocate(Math.max(1, count));
        for (long i = 0; i < count; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) (rnd.nextInt(255) - 127));
        }
        return s;
    }
}
