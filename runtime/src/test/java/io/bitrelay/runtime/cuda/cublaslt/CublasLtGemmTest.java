package io.bitrelay.runtime.cuda.cublaslt;

import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.cuda.HostData;
import io.bitrelay.runtime.ops.cpu.ReferenceMatMul;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** cuBLASLt GEMMs Y = X · W^T against ReferenceMatMul, in every precision and layout cuBLASLt supports here. */
@Timeout(300)
class CublasLtGemmTest {
    private static final long WORKSPACE_BYTES = 32L << 20;

    @ParameterizedTest(name = "{0} m={1} n={2} k={3}")
    @CsvSource({"WEIGHTS_FIRST, 1, 256, 512", "WEIGHTS_FIRST, 37, 384, 1024", "ACTIVATIONS_FIRST, 16, 256, 512",
            "ACTIVATIONS_FIRST, 130, 128, 768"})
    void shouldComputeTheExactInt8Product(GemmLayout layout, int m, int n, int k) {
        CublasLt lt = GpuTestSupport.cublasLt();
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             GemmPlan plan = GemmPlan.create(lt, GemmPrecision.INT8_INT32, layout, m, n, k);
             DeviceBuffer workspace = DeviceBuffer.allocate(WORKSPACE_BYTES)) {
            List<GemmAlgorithm> algorithms = plan.heuristics(lt, WORKSPACE_BYTES, 8);
            if (algorithms.isEmpty()) {
                System.out.println("[note] cuBLASLt has no INT8 algorithm for " + plan);
                assertTrue(layout != GemmLayout.WEIGHTS_FIRST, "the TN weights-first layout must be supported");
                return;
            }
            try (Int8Operands gemm = new Int8Operands(arena, m, n, k, m * 7L + n)) {
                for (GemmAlgorithm algorithm : algorithms) {
                    gemm.assertExact(arena, stream, () -> gemm.run(lt, plan, algorithm, workspace, stream),
                            "algorithm " + algorithm);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} m={1}")
    @CsvSource({"WEIGHTS_FIRST, 3", "WEIGHTS_FIRST, 64", "ACTIVATIONS_FIRST, 64"})
    void shouldComputeTheFp16ProductWithFp32Accumulation(GemmLayout layout, int m) {
        CublasLt lt = GpuTestSupport.cublasLt();
        int n = 320;
        int k = 1024;
        SplittableRandom random = new SplittableRandom(m);
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             GemmPlan plan = GemmPlan.create(lt, GemmPrecision.FP16, layout, m, n, k);
             DeviceBuffer workspace = DeviceBuffer.allocate(WORKSPACE_BYTES)) {
            List<GemmAlgorithm> algorithms = plan.heuristics(lt, WORKSPACE_BYTES, 4);
            assertFalse(algorithms.isEmpty(), "no FP16 algorithm for " + plan);
            MemorySegment x = HostData.fromHalf(arena, HostData.toHalf(arena, HostData.floats(arena, m, k, 1f, random)));
            MemorySegment w = HostData.fromHalf(arena, HostData.toHalf(arena, HostData.floats(arena, n, k, 0.05f, random)));
            MemorySegment expected = arena.allocate((long) m * n * 4, 64);
            ReferenceMatMul.matmulF32(x, w, null, expected, m, n, k);
            try (DeviceBuffer dx = HostData.upload(HostData.toHalf(arena, x));
                 DeviceBuffer dw = HostData.upload(HostData.toHalf(arena, w));
                 DeviceBuffer dy = DeviceBuffer.allocate((long) m * n * 2)) {
                for (GemmAlgorithm algorithm : algorithms) {
                    plan.run(lt, algorithm, dx.address(), dw.address(), dy.address(), workspace.address(), WORKSPACE_BYTES,
                            stream.address());
                    stream.synchronize();
                    MemorySegment y = HostData.fromHalf(arena, HostData.download(arena, dy, (long) m * n * 2));
                    double error = relativeError(y, expected);
                    assertTrue(error < 2e-3, "relative error " + error + " with " + algorithm);
                }
            }
        }
    }

    @Test
    void shouldScaleAndSaturateInt8Output() {
        CublasLt lt = GpuTestSupport.cublasLt();
        int m = 32;
        int n = 256;
        int k = 512;
        float alpha = 1f / 2000f;
        SplittableRandom random = new SplittableRandom(5);
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             GemmPlan plan = GemmPlan.create(lt, GemmPrecision.INT8_INT8, GemmLayout.WEIGHTS_FIRST, m, n, k);
             DeviceBuffer workspace = DeviceBuffer.allocate(WORKSPACE_BYTES)) {
            plan.setAlpha(alpha);
            List<GemmAlgorithm> algorithms = plan.heuristics(lt, WORKSPACE_BYTES, 4);
            if (algorithms.isEmpty()) {
                System.out.println("[note] cuBLASLt has no INT8-output algorithm for " + plan);
                return;
            }
            MemorySegment x = HostData.int8(arena, (long) m * k, random);
            MemorySegment w = HostData.int8(arena, (long) n * k, random);
            MemorySegment acc = arena.allocate((long) m * n * 4, 64);
            ReferenceMatMul.matmulI8(x, w, acc, m, n, k);
            try (DeviceBuffer dx = HostData.upload(x); DeviceBuffer dw = HostData.upload(w);
                 DeviceBuffer dy = DeviceBuffer.allocate((long) m * n)) {
                plan.run(lt, algorithms.getFirst(), dx.address(), dw.address(), dy.address(), workspace.address(),
                        WORKSPACE_BYTES, stream.address());
                stream.synchronize();
                byte[] y = HostData.download(arena, dy, (long) m * n).toArray(ValueLayout.JAVA_BYTE);
                int saturated = 0;
                for (int i = 0; i < y.length; i++) {
                    double expected = Math.max(-128, Math.min(127, acc.getAtIndex(ValueLayout.JAVA_INT, i) * (double) alpha));
                    assertEquals(expected, y[i], 1.0, "element " + i);
                    saturated += Math.abs(y[i]) >= 127 ? 1 : 0;
                }
                assertTrue(saturated < y.length, "everything saturated: alpha too large for a useful test");
            }
        }
    }

    @Test
    void shouldTuneOnceAndReuseTheCachedChoice() {
        CublasLt lt = GpuTestSupport.cublasLt();
        int m = 16;
        int n = 512;
        int k = 1024;
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             DeviceBuffer workspace = DeviceBuffer.allocate(WORKSPACE_BYTES);
             GemmAutotuner tuner = new GemmAutotuner(lt, workspace, stream, 8, 3);
             Int8Operands gemm = new Int8Operands(arena, m, n, k, 11)) {
            GemmAutotuner.Choice first = gemm.tune(tuner);
            assertTrue(first.candidatesTimed() >= 1);
            assertTrue(first.medianMicros() > 0);
            assertSame(first, gemm.tune(tuner));
            gemm.assertExact(arena, stream, () -> gemm.run(tuner), "tuned");
            System.out.println("[GPU tests] tuned int8 m=16 n=512 k=1024: " + first.describe() + ", "
                    + first.medianMicros() + " us, cuBLASLt " + lt.library().version());
        }
    }

    @Test
    void shouldComputeTheExactProductWithEveryVariationCublasLtAccepts() {
        CublasLt lt = GpuTestSupport.cublasLt();
        int m = 128;
        int n = 384;
        int k = 1024;
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             GemmPlan plan = GemmPlan.create(lt, GemmPrecision.INT8_INT32, GemmLayout.WEIGHTS_FIRST, m, n, k);
             DeviceBuffer workspace = DeviceBuffer.allocate(WORKSPACE_BYTES)) {
            GemmAlgorithm base = plan.heuristics(lt, WORKSPACE_BYTES, 1).getFirst();
            List<GemmAlgorithm> accepted = AlgoVariations.of(lt.library(), base.algo()).stream()
                    .map(variant -> plan.check(lt, variant, GemmAlgorithm.VARIANT))
                    .filter(a -> a != null && a.workspaceBytes() <= WORKSPACE_BYTES).toList();
            assertFalse(accepted.isEmpty(), "no variation of " + base + " accepted");
            try (Int8Operands gemm = new Int8Operands(arena, m, n, k, 17)) {
                for (GemmAlgorithm algorithm : accepted) {
                    gemm.assertExact(arena, stream, () -> gemm.run(lt, plan, algorithm, workspace, stream),
                            "variation " + algorithm + " of " + base);
                }
            }
            System.out.println("[GPU tests] " + accepted.size() + " variations of " + base + " accepted, all exact");
        }
    }

    @Test
    void shouldTimeVariationsBeyondTheHeuristicsAndStayExact() {
        CublasLt lt = GpuTestSupport.cublasLt();
        int m = 128;
        int n = 1024;
        int k = 2048;
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             DeviceBuffer workspace = DeviceBuffer.allocate(WORKSPACE_BYTES);
             GemmAutotuner heuristics = new GemmAutotuner(lt, workspace, stream, 8, 3);
             GemmAutotuner variations = new GemmAutotuner(lt, workspace, stream, 8, 3,
                     GemmSearch.variations(Duration.ofSeconds(2)));
             Int8Operands gemm = new Int8Operands(arena, m, n, k, 23)) {
            GemmAutotuner.Choice plain = gemm.tune(heuristics);
            GemmAutotuner.Choice searched = gemm.tune(variations);
            assertTrue(searched.candidatesTimed() > plain.candidatesTimed(),
                    searched.candidatesTimed() + " timed with variations vs " + plain.candidatesTimed());
            gemm.assertExact(arena, stream, () -> gemm.run(variations), "searched");
            System.out.println("[GPU tests] int8 m=128 n=1024 k=2048: heuristics " + plain.describe() + " "
                    + plain.medianMicros() + " us (" + plain.candidatesTimed() + " timed), variations "
                    + searched.describe() + " " + searched.medianMicros() + " us (" + searched.candidatesTimed()
                    + " timed)");
        }
    }

    @Test
    void shouldReuseTunedChoicesFromACacheAndDropWhatCublasLtRefuses() {
        CublasLt lt = GpuTestSupport.cublasLt();
        int m = 16;
        int n = 768;
        int k = 1024;
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             DeviceBuffer workspace = DeviceBuffer.allocate(WORKSPACE_BYTES);
             GemmAutotuner first = new GemmAutotuner(lt, workspace, stream, 8, 3);
             GemmAutotuner second = new GemmAutotuner(lt, workspace, stream, 8, 3);
             Int8Operands gemm = new Int8Operands(arena, m, n, k, 29)) {
            GemmAutotuner.Choice tuned = gemm.tune(first);
            List<GemmTuningCache.Entry> entries = new ArrayList<>(first.entries());
            byte[] nonsense = new byte[64];
            Arrays.fill(nonsense, (byte) 0x5a);
            entries.add(new GemmTuningCache.Entry(GemmPrecision.INT8_INT32, 32, n, k, GemmLayout.WEIGHTS_FIRST, nonsense,
                    1.0));
            assertEquals(1, second.adopt(entries), "the tuned entry is taken, the nonsense algorithm refused");
            GemmAutotuner.Choice reused = gemm.tune(second);
            assertEquals(GemmAlgorithm.CACHED, reused.algorithm().heuristicRank());
            assertEquals(tuned.algorithm().config(), reused.algorithm().config());
            gemm.assertExact(arena, stream, () -> gemm.run(second), "adopted from the cache");
        }
    }

    /** Random INT8 operands of Y = X · Wᵀ on the device, an output buffer, and the exact product on the host. */
    private static final class Int8Operands implements AutoCloseable {
        private final int m;
        private final int n;
        private final int k;
        private final MemorySegment expected;
        private final DeviceBuffer x;
        private final DeviceBuffer w;
        private final DeviceBuffer y;

        Int8Operands(Arena arena, int m, int n, int k, long seed) {
            this.m = m;
            this.n = n;
            this.k = k;
            SplittableRandom random = new SplittableRandom(seed);
            MemorySegment hostX = HostData.int8(arena, (long) m * k, random);
            MemorySegment hostW = HostData.int8(arena, (long) n * k, random);
            expected = arena.allocate((long) m * n * 4, 64);
            ReferenceMatMul.matmulI8(hostX, hostW, expected, m, n, k);
            x = HostData.upload(hostX);
            w = HostData.upload(hostW);
            y = DeviceBuffer.allocate((long) m * n * 4);
        }

        GemmAutotuner.Choice tune(GemmAutotuner tuner) {
            return tuner.tune(GemmPrecision.INT8_INT32, m, n, k, x.address(), w.address(), y.address());
        }

        void run(GemmAutotuner tuner) {
            tuner.run(GemmPrecision.INT8_INT32, m, n, k, x.address(), w.address(), y.address());
        }

        void run(CublasLt lt, GemmPlan plan, GemmAlgorithm algorithm, DeviceBuffer workspace, CudaStream stream) {
            plan.run(lt, algorithm, x.address(), w.address(), y.address(), workspace.address(), workspace.byteSize(),
                    stream.address());
        }

        /** Runs {@code gemm} into a poisoned output and requires the exact product. */
        void assertExact(Arena arena, CudaStream stream, Runnable gemm, String what) {
            y.fill((byte) 0x7f, stream);
            gemm.run();
            stream.synchronize();
            assertArrayEquals(expected.toArray(ValueLayout.JAVA_INT),
                    HostData.download(arena, y, (long) m * n * 4).toArray(ValueLayout.JAVA_INT), what);
        }

        @Override
        public void close() {
            y.close();
            w.close();
            x.close();
        }
    }

    private static double relativeError(MemorySegment actual, MemorySegment expected) {
        double diff = 0;
        double norm = 0;
        for (long i = 0; i < expected.byteSize() / Float.BYTES; i++) {
            double e = expected.getAtIndex(HostData.F32, i);
            double d = actual.getAtIndex(HostData.F32, i) - e;
            diff += d * d;
            norm += e * e;
        }
        return Math.sqrt(diff / norm);
    }
}
