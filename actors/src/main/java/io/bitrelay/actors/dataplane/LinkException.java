package io.bitrelay.actors.dataplane;

/** A frame could not be sent on a link; {@link #reason()} says why, the message says where and for how long. */
public final class LinkException extends RuntimeException {

    public enum Reason {
        /** No subscriber connected before the deadline. */
        NOT_CONNECTED,
        /** The subscriber did not make room before the deadline. */
        BACK_PRESSURED,
        /** The driver kept asking for an admin action (log rotation, etc.) until the deadline. */
        ADMIN_ACTION,
        /** The publication was closed. */
        CLOSED,
        /** The stream reached the largest position its term length allows; a new publication is needed. */
        MAX_POSITION_EXCEEDED
    }

    private final Reason reason;
    private final Link link;

    public LinkException(Reason reason, Link link, String message) {
        super(message);
        this.reason = reason;
        this.link = link;
    }

    public Reason reason() {
        return reason;
    }

    public Link link() {
        return link;
    }

    /** "10 s" for whole seconds, "250 ms" otherwise. */
    static String describeNanos(long nanos) {
        long millis = nanos / 1_000_000;
        return millis % 1000 == 0 && millis > 0 ? (millis / 1000) + " s" : millis + " ms";
    }
}
