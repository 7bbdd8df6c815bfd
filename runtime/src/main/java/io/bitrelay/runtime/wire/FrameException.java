package io.bitrelay.runtime.wire;

/**
 * A received link frame that must not be used. The message starts with the reason and names the numbers
 * involved, e.g. {@code "BAD_SIZES: frame of 1000 bytes declares 1200"}.
 */
public final class FrameException extends RuntimeException {

    /** Why a frame was refused, in the order {@link LinkFrameReader} checks. */
    public enum Reason {
        /** Shorter than a header and CRC, or than the lengths its header declares. */
        TRUNCATED,
        /** Not a link frame: the first four bytes are not 'BRLF'. */
        BAD_MAGIC,
        /** A frame format version this node does not read. */
        BAD_VERSION,
        /** A codec id this node does not know, or knows but cannot decode (RPTQ without a plan). */
        UNKNOWN_CODEC,
        /** Section lengths that disagree with rows, width, codec or the frame's length; or a bad layout section. */
        BAD_SIZES,
        /** The CRC32C does not match: the frame was corrupted on the way. */
        BAD_CRC,
        /** On an authenticated link: no tag, or one the link key did not make (a forged or tampered frame). */
        BAD_TAG,
        /** An authenticated frame of a step this stage already took (a replay); raised by the receiving stage. */
        REPLAYED
    }

    private final Reason reason;

    public FrameException(Reason reason, String detail) {
        super(reason + ": " + detail);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
