package io.bitrelay.runtime.ops.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Plain scalar loops with the same contracts as {@link Fp32MatMul} and {@link Int8MatMul}: the oracle the
 * fast kernels are tested and validated against. Deliberately naive; never use it on a hot path.
 */
public final class ReferenceMatMul {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;

    private ReferenceMatMul() {
    }

    /** out[M,N] = a[M,K] · w[N,K]^T (+ bias[N]); FP32, row-major. Accumulates in double to be a tight oracle. */
    public static void matmulF32(MemorySegment a, MemorySegment w, MemorySegment bias, MemorySegment out,
                                 int m, int n, int k) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = bias == null ? 0.0 : bias.getAtIndex(F32, j);
                for (int p = 0; p < k; p++) {
                    sum += (double) a.getAtIndex(F32, (long) i * k + p) * w.getAtIndex(F32, (long) j * k + p);
                }
                out.setAtIndex(F32, (long) i * n + j, (float) sum);
            }
        }
    }

    /** out[M,N] (int32) = a[M,K] (int8) · w[N,K]^T (int8); exact. */
    public static void matmulI8(MemorySegment a, MemorySegment w, MemorySegment out, int m, int n, int k) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                int sum = 0;
                for (int p = 0; p < k; p++) {
                    sum += a.get(ValueLayout.JAVA_BYTE, (long) i * k + p)
                            * w.get(ValueLayout.JAVA_BYTE, (long) j * k + p);
                }
                out.setAtIndex(I32, (long) i * n + j, sum);
            }
        }
    }
}
