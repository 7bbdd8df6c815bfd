package io.bitrelay.runtime.cuda.cublaslt;

import io.bitrelay.runtime.cuda.CudaUnavailableException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The cuBLASLt entry points we use, bound through java.lang.foreign (the library stays loaded for the life
 * of the process). Signatures follow cublasLt.h of CUDA 12/13; handles and descriptors are opaque pointers,
 * size_t and (u)int64_t are JAVA_LONG, enums are JAVA_INT. Every call returns a cublasStatus_t, checked by
 * {@link #check}.
 */
public final class CublasLtLibrary {
    /** sizeof(cublasLtMatmulAlgo_t): uint64_t data[8]. */
    static final long ALGO_BYTES = 64;
    /** sizeof(cublasLtMatmulHeuristicResult_t): algo, size_t workspaceSize, status state, float wavesCount, int reserved[4]. */
    static final long HEURISTIC_RESULT_BYTES = 96;
    static final long HEURISTIC_WORKSPACE_OFFSET = 64;
    static final long HEURISTIC_STATE_OFFSET = 72;
    static final long HEURISTIC_WAVES_OFFSET = 76;

    private static volatile CublasLtLibrary loaded;

    private final CublasLtLocator.Location location;
    final MethodHandle create;
    final MethodHandle destroy;
    final MethodHandle getVersion;
    final MethodHandle getStatusName;
    final MethodHandle matmulDescCreate;
    final MethodHandle matmulDescDestroy;
    final MethodHandle matmulDescSetAttribute;
    final MethodHandle matrixLayoutCreate;
    final MethodHandle matrixLayoutDestroy;
    final MethodHandle matrixLayoutSetAttribute;
    final MethodHandle preferenceCreate;
    final MethodHandle preferenceDestroy;
    final MethodHandle preferenceSetAttribute;
    final MethodHandle algoGetHeuristic;
    final MethodHandle algoConfigGetAttribute;
    final MethodHandle algoConfigSetAttribute;
    final MethodHandle algoCapGetAttribute;
    final MethodHandle algoCheck;
    final MethodHandle matmul;

    private CublasLtLibrary(CublasLtLocator.Location location, SymbolLookup lookup) {
        this.location = location;
        Binder bind = new Binder(lookup);
        create = bind.status("cublasLtCreate", ADDRESS);
        destroy = bind.status("cublasLtDestroy", ADDRESS);
        getVersion = bind.function("cublasLtGetVersion", FunctionDescriptor.of(JAVA_LONG));
        getStatusName = bind.function("cublasLtGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        matmulDescCreate = bind.status("cublasLtMatmulDescCreate", ADDRESS, JAVA_INT, JAVA_INT);
        matmulDescDestroy = bind.status("cublasLtMatmulDescDestroy", ADDRESS);
        matmulDescSetAttribute = bind.status("cublasLtMatmulDescSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
        matrixLayoutCreate = bind.status("cublasLtMatrixLayoutCreate", ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG);
        matrixLayoutDestroy = bind.status("cublasLtMatrixLayoutDestroy", ADDRESS);
        matrixLayoutSetAttribute = bind.status("cublasLtMatrixLayoutSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
        preferenceCreate = bind.status("cublasLtMatmulPreferenceCreate", ADDRESS);
        preferenceDestroy = bind.status("cublasLtMatmulPreferenceDestroy", ADDRESS);
        preferenceSetAttribute = bind.status("cublasLtMatmulPreferenceSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
        algoGetHeuristic = bind.status("cublasLtMatmulAlgoGetHeuristic", ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
        algoConfigGetAttribute = bind.status("cublasLtMatmulAlgoConfigGetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG,
                ADDRESS);
        algoConfigSetAttribute = bind.status("cublasLtMatmulAlgoConfigSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
        algoCapGetAttribute = bind.status("cublasLtMatmulAlgoCapGetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG,
                ADDRESS);
        algoCheck = bind.status("cublasLtMatmulAlgoCheck", ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS);
        matmul = bind.status("cublasLtMatmul", ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS);
    }

    /** Loads cuBLASLt from {@code location} once per process; later calls return the same library. */
    public static synchronized CublasLtLibrary load(CublasLtLocator.Location location) {
        if (loaded == null) {
            loaded = loadUncached(location);
        }
        return loaded;
    }

    /** Binds a new library object from {@code location} (tests; everything else shares {@link #load}'s). */
    static CublasLtLibrary loadUncached(CublasLtLocator.Location location) {
        SymbolLookup lookup;
        try {
            lookup = location.path() != null
                    ? SymbolLookup.libraryLookup(location.path(), Arena.global())
                    : SymbolLookup.libraryLookup(location.soname(), Arena.global());
        } catch (IllegalArgumentException | IllegalCallerException e) {
            throw new CudaUnavailableException("cuBLASLt not found: cannot load " + location.describe() + " (" + e.getMessage()
                    + "); set -D" + CublasLtLocator.PROPERTY + "=/path/to/" + CublasLtLocator.SONAME + " or $"
                    + CublasLtLocator.ENV, e);
        }
        return new CublasLtLibrary(location, lookup);
    }

    public CublasLtLocator.Location location() {
        return location;
    }

    /** cublasLtGetVersion(), e.g. 130000 for 13.0.0. */
    public long version() {
        try {
            return (long) getVersion.invokeExact();
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** Throws {@link CublasLtException} naming {@code call} unless {@code status} is CUBLAS_STATUS_SUCCESS. */
    void check(int status, String call) {
        if (status != 0) {
            throw new CublasLtException(call, status, statusName(status));
        }
    }

    String statusName(int status) {
        try {
            MemorySegment name = (MemorySegment) getStatusName.invokeExact(status);
            return name.equals(MemorySegment.NULL) ? "status " + status : name.reinterpret(256).getString(0);
        } catch (Throwable e) {
            return "status " + status;
        }
    }

    /** Binds symbols, saying which one is missing (a cuBLASLt older than the API we need). */
    private record Binder(SymbolLookup lookup) {
        MethodHandle status(String name, ValueLayout... args) {
            return function(name, FunctionDescriptor.of(JAVA_INT, args));
        }

        MethodHandle function(String name, FunctionDescriptor descriptor) {
            MemorySegment symbol = lookup.find(name).orElseThrow(() -> new CudaUnavailableException(
                    "cuBLASLt lacks " + name + " (too old a library?)"));
            return Linker.nativeLinker().downcallHandle(symbol, descriptor);
        }
    }
}
