package io.bitrelay.runtime.cuda.cublaslt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A cuBLASLt handle (cublasLtCreate), bound to the CUDA context current when it was created: create it
 * after {@code CudaContext.open} on the thread that runs the GEMMs. Thread-safe per cuBLASLt's docs as long
 * as each thread passes its own workspace.
 */
public final class CublasLt implements AutoCloseable {
    private final CublasLtLibrary library;
    private MemorySegment handle;

    private CublasLt(CublasLtLibrary library, MemorySegment handle) {
        this.library = library;
        this.handle = handle;
    }

    public static CublasLt create(CublasLtLibrary library) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            library.check((int) library.create.invokeExact(out), "cublasLtCreate");
            return new CublasLt(library, out.get(ValueLayout.ADDRESS, 0));
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("cublasLtCreate", e);
        }
    }

    public CublasLtLibrary library() {
        return library;
    }

    MemorySegment handle() {
        if (handle == null) {
            throw new IllegalStateException("cuBLASLt handle is closed");
        }
        return handle;
    }

    @Override
    public void close() {
        if (handle != null) {
            try {
                library.check((int) library.destroy.invokeExact(handle), "cublasLtDestroy");
            } catch (RuntimeException e) {
                throw e;
            } catch (Throwable e) {
                throw new IllegalStateException("cublasLtDestroy", e);
            }
            handle = null;
        }
    }
}
