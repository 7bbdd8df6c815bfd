package io.bitrelay.runtime.cuda.cublaslt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * The cuBLASLt descriptors of one GEMM {@code Y[M,N] = X[M,K] · W[N,K]^T} (row-major, W as stored) in one
 * precision and layout: the matmul descriptor and the A, B and C/D layouts, plus alpha = 1 and beta = 0 in
 * host memory. Owns them until {@link #close()}; use from one thread at a time.
 */
public final class GemmPlan implements AutoCloseable {
    // cublasLtMatmulDescAttributes_t, cublasOperation_t, cublasLtMatrixLayoutAttribute_t, cublasLtOrder_t,
    // cublasLtMatmulPreferenceAttributes_t (cublasLt.h).
    private static final int DESC_TRANSA = 3;
    private static final int DESC_TRANSB = 4;
    private static final int OP_N = 0;
    private static final int OP_T = 1;
    private static final int LAYOUT_ORDER = 1;
    private static final int ORDER_ROW = 1;
    private static final int PREF_MAX_WORKSPACE_BYTES = 1;

    private final CublasLtLibrary library;
    private final GemmPrecision precision;
    private final GemmLayout layout;
    private final int m;
    private final int n;
    private final int k;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment desc;
    private final MemorySegment aLayout;
    private final MemorySegment bLayout;
    private final MemorySegment dLayout;
    private final MemorySegment alpha;
    private final MemorySegment beta;
    private boolean closed;

    private GemmPlan(CublasLtLibrary library, GemmPrecision precision, GemmLayout layout, int m, int n, int k) {
        this.library = library;
        this.precision = precision;
        this.layout = layout;
        this.m = m;
        this.n = n;
        this.k = k;
        boolean weightsFirst = layout == GemmLayout.WEIGHTS_FIRST;
        desc = create("cublasLtMatmulDescCreate", out ->
                (int) library.matmulDescCreate.invokeExact(out, precision.computeType, precision.scaleType));
        setDescInt(DESC_TRANSA, OP_T);
        setDescInt(DESC_TRANSB, OP_N);
        if (weightsFirst) {
            aLayout = matrixLayout(precision.inputType, k, n, k);   // W: K×N column-major = (N,K) row-major
            bLayout = matrixLayout(precision.inputType, k, m, k);   // X: K×M column-major = (M,K) row-major
            dLayout = matrixLayout(precision.outputType, n, m, n);  // Y^T: N×M column-major = (M,N) row-major
        } else {
            aLayout = matrixLayout(precision.inputType, k, m, k);   // X, transposed to M×K
            bLayout = matrixLayout(precision.inputType, k, n, k);   // W: K×N column-major
            dLayout = matrixLayout(precision.outputType, m, n, n);  // Y: M×N row-major
            setLayoutInt(dLayout, LAYOUT_ORDER, ORDER_ROW);
        }
        alpha = arena.allocate(8);
        beta = arena.allocate(8);
        setAlpha(1f);
    }

    public static GemmPlan create(CublasLt lt, GemmPrecision precision, GemmLayout layout, int m, int n, int k) {
        if (m <= 0 || n <= 0 || k <= 0) {
            throw new IllegalArgumentException("bad GEMM shape m=" + m + " n=" + n + " k=" + k);
        }
        return new GemmPlan(lt.library(), precision, layout, m, n, k);
    }

    public GemmPrecision precision() {
        return precision;
    }

    public GemmLayout layout() {
        return layout;
    }

    public int m() {
        return m;
    }

    public int n() {
        return n;
    }

    public int k() {
        return k;
    }

    /** Output scale: D = alpha · X·W^T. Must stay 1 for {@link GemmPrecision#INT8_INT32} (an integer scale). */
    public void setAlpha(float value) {
        if (precision.scaleType == GemmPrecision.CudaDataType.R_32I) {
            if (value != 1f) {
                throw new IllegalArgumentException(precision + " computes the exact int32 product: alpha must be 1");
            }
            alpha.set(ValueLayout.JAVA_INT, 0, 1);
            beta.set(ValueLayout.JAVA_INT, 0, 0);
        } else {
            alpha.set(ValueLayout.JAVA_FLOAT, 0, value);
            beta.set(ValueLayout.JAVA_FLOAT, 0, 0f);
        }
    }

    /**
     * Up to {@code maxAlgorithms} algorithms cuBLASLt's heuristics consider usable within {@code workspaceBytes},
     * best guess first; empty when none supports this plan.
     */
    public List<GemmAlgorithm> heuristics(CublasLt lt, long workspaceBytes, int maxAlgorithms) {
        List<GemmAlgorithm> algorithms = new ArrayList<>();
        try (Arena call = Arena.ofConfined()) {
            MemorySegment preference = create("cublasLtMatmulPreferenceCreate",
                    out -> (int) library.preferenceCreate.invokeExact(out));
            try {
                MemorySegment value = call.allocate(ValueLayout.JAVA_LONG);
                value.set(ValueLayout.JAVA_LONG, 0, workspaceBytes);
                library.check((int) library.preferenceSetAttribute.invokeExact(preference, PREF_MAX_WORKSPACE_BYTES, value,
                        8L), "cublasLtMatmulPreferenceSetAttribute");
                MemorySegment results = call.allocate(CublasLtLibrary.HEURISTIC_RESULT_BYTES * maxAlgorithms, 8);
                MemorySegment returned = call.allocate(ValueLayout.JAVA_INT);
                int status = (int) library.algoGetHeuristic.invokeExact(lt.handle(), desc, aLayout, bLayout, dLayout,
                        dLayout, preference, maxAlgorithms, results, returned);
                if (status != 0) {
                    return algorithms; // CUBLAS_STATUS_NOT_SUPPORTED: no kernel for this precision and layout
                }
                for (int i = 0; i < returned.get(ValueLayout.JAVA_INT, 0); i++) {
                    MemorySegment result = results.asSlice(CublasLtLibrary.HEURISTIC_RESULT_BYTES * i,
                            CublasLtLibrary.HEURISTIC_RESULT_BYTES);
                    if (result.get(ValueLayout.JAVA_INT, CublasLtLibrary.HEURISTIC_STATE_OFFSET) != 0) {
                        continue;
                    }
                    MemorySegment algo = Arena.ofAuto().allocate(CublasLtLibrary.ALGO_BYTES, 8);
                    algo.copyFrom(result.asSlice(0, CublasLtLibrary.ALGO_BYTES));
                    algorithms.add(new GemmAlgorithm(algo,
                            result.get(ValueLayout.JAVA_LONG, CublasLtLibrary.HEURISTIC_WORKSPACE_OFFSET),
                            result.get(ValueLayout.JAVA_FLOAT, CublasLtLibrary.HEURISTIC_WAVES_OFFSET), i,
                            AlgoConfig.describe(library, algo)));
                }
            } finally {
                library.check((int) library.preferenceDestroy.invokeExact(preference), "cublasLtMatmulPreferenceDestroy");
            }
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("cublasLtMatmulAlgoGetHeuristic", e);
        }
        return algorithms;
    }

    /**
     * {@code algo} as an algorithm for this plan when cuBLASLt accepts it (cublasLtMatmulAlgoCheck: its workspace and
     * waves filled in), else null. For configurations the heuristics did not offer: see {@link AlgoVariations}.
     */
    GemmAlgorithm check(CublasLt lt, MemorySegment algo, int rank) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment result = call.allocate(CublasLtLibrary.HEURISTIC_RESULT_BYTES, 8);
            int status = (int) library.algoCheck.invokeExact(lt.handle(), desc, aLayout, bLayout, dLayout, dLayout, algo,
                    result);
            if (status != 0 || result.get(ValueLayout.JAVA_INT, CublasLtLibrary.HEURISTIC_STATE_OFFSET) != 0) {
                return null;
            }
            return new GemmAlgorithm(algo, result.get(ValueLayout.JAVA_LONG, CublasLtLibrary.HEURISTIC_WORKSPACE_OFFSET),
                    result.get(ValueLayout.JAVA_FLOAT, CublasLtLibrary.HEURISTIC_WAVES_OFFSET), rank,
                    AlgoConfig.describe(library, algo));
        } catch (Throwable e) {
            return null;
        }
    }

    /**
     * Queues {@code y = x · w^T} on {@code stream} (device addresses; {@code stream} a cudaStream_t address).
     *
     * @param x (m, k) row-major, w (n, k) row-major, y (m, n) row-major
     */
    public void run(CublasLt lt, GemmAlgorithm algorithm, long x, long w, long y, long workspace, long workspaceBytes,
                    long stream) {
        if (closed) {
            throw new IllegalStateException("GEMM plan is closed");
        }
        if (algorithm.workspaceBytes() > workspaceBytes) {
            throw new IllegalArgumentException("algorithm needs " + algorithm.workspaceBytes() + " workspace bytes, have "
                    + workspaceBytes);
        }
        boolean weightsFirst = layout == GemmLayout.WEIGHTS_FIRST;
        MemorySegment a = MemorySegment.ofAddress(weightsFirst ? w : x);
        MemorySegment b = MemorySegment.ofAddress(weightsFirst ? x : w);
        MemorySegment d = MemorySegment.ofAddress(y);
        try {
            int status = (int) library.matmul.invokeExact(lt.handle(), desc, alpha, a, aLayout, b, bLayout, beta, d, dLayout,
                    d, dLayout, algorithm.algo(), MemorySegment.ofAddress(workspace), workspaceBytes,
                    MemorySegment.ofAddress(stream));
            library.check(status, "cublasLtMatmul(" + this + ")");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("cublasLtMatmul", e);
        }
    }

    @Override
    public String toString() {
        return precision.label() + " " + layout.label() + " m=" + m + " n=" + n + " k=" + k;
    }

    private MemorySegment matrixLayout(int type, long rows, long cols, long ld) {
        return create("cublasLtMatrixLayoutCreate",
                out -> (int) library.matrixLayoutCreate.invokeExact(out, type, rows, cols, ld));
    }

    private void setDescInt(int attribute, int value) {
        MemorySegment buffer = arena.allocate(ValueLayout.JAVA_INT);
        buffer.set(ValueLayout.JAVA_INT, 0, value);
        invoke("cublasLtMatmulDescSetAttribute",
                () -> (int) library.matmulDescSetAttribute.invokeExact(desc, attribute, buffer, 4L));
    }

    private void setLayoutInt(MemorySegment matrixLayout, int attribute, int value) {
        MemorySegment buffer = arena.allocate(ValueLayout.JAVA_INT);
        buffer.set(ValueLayout.JAVA_INT, 0, value);
        invoke("cublasLtMatrixLayoutSetAttribute",
                () -> (int) library.matrixLayoutSetAttribute.invokeExact(matrixLayout, attribute, buffer, 4L));
    }

    private interface Call {
        int invoke() throws Throwable;
    }

    private interface Creator {
        int invoke(MemorySegment out) throws Throwable;
    }

    private void invoke(String name, Call call) {
        try {
            library.check(call.invoke(), name);
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException(name, e);
        }
    }

    private MemorySegment create(String name, Creator creator) {
        MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
        invoke(name, () -> creator.invoke(out));
        return out.get(ValueLayout.ADDRESS, 0);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        invoke("cublasLtMatrixLayoutDestroy", () -> (int) library.matrixLayoutDestroy.invokeExact(aLayout));
        invoke("cublasLtMatrixLayoutDestroy", () -> (int) library.matrixLayoutDestroy.invokeExact(bLayout));
        invoke("cublasLtMatrixLayoutDestroy", () -> (int) library.matrixLayoutDestroy.invokeExact(dLayout));
        invoke("cublasLtMatmulDescDestroy", () -> (int) library.matmulDescDestroy.invokeExact(desc));
        arena.close();
    }
}
