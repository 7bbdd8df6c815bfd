package io.bitrelay.runtime.cuda.cublaslt;

/** A cuBLASLt call returned an error status; the message names the call and the status. */
public final class CublasLtException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int status;

    public CublasLtException(String call, int status, String statusName) {
        super(call + " failed: " + statusName + " (" + status + ")");
        this.status = status;
    }

    public int status() {
        return status;
    }
}
