package io.bitrelay.actors.gateway;

/**
 * A request the gateway refuses before anything is queued; becomes an OpenAI-shaped error body
 * {@code {"error":{"message", "type", "param", "code"}}} with {@link #status()}.
 */
public final class InvalidRequestException extends RuntimeException {
    private final int status;
    private final String param;
    private final String code;

    public InvalidRequestException(String message, String param) {
        this(400, message, param, null);
    }

    public InvalidRequestException(int status, String message, String param, String code) {
        super(message);
        this.status = status;
        this.param = param;
        this.code = code;
    }

    public int status() {
        return status;
    }

    /** The request field at fault, or null. */
    public String param() {
        return param;
    }

    /** OpenAI's machine-readable code (e.g. "model_not_found"), or null. */
    public String code() {
        return code;
    }
}
