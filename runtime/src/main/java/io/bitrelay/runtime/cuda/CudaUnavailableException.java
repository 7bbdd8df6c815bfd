package io.bitrelay.runtime.cuda;

/**
 * The CUDA backend cannot run here; the message names what is missing (JCuda's native library, the driver
 * libcuda.so.1, a GPU, the kernels fatbin, cuBLASLt). Thrown instead of a linkage error so that code which
 * never needed a GPU is unaffected, and code that did gets one readable reason.
 */
public final class CudaUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public CudaUnavailableException(String message) {
        super(message);
    }

    public CudaUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
