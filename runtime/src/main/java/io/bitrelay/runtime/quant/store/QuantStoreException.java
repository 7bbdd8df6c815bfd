package io.bitrelay.runtime.quant.store;

/**
 * A saved recipe or stage file that cannot be used: missing, corrupt, truncated, or made for another model,
 * recipe, calibration or placement. The message names the file and what is wrong; callers recalibrate.
 */
public final class QuantStoreException extends RuntimeException {
    public QuantStoreException(String message) {
        super(message);
    }

    public QuantStoreException(String message, Throwable cause) {
        super(message, cause);
    }
}
