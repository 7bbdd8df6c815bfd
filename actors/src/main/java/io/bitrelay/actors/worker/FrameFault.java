package io.bitrelay.actors.worker;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;

/** Deliberate corruption of one outgoing frame, to prove the receiving stage rejects it. */
public enum FrameFault {
    /** Flips one payload bit: the CRC no longer matches. */
    FLIP,
    /** Cuts the frame short. */
    TRUNCATE,
    /** Rewrites the format version. */
    VERSION,
    /**
     * Sends, before the genuine frame, a copy with one payload bit flipped and its CRC recomputed (what a forger who
     * can reach the port can do): only the tag tells it apart. The genuine frame follows, so the request is served.
     */
    FORGE,
    /** Sends the genuine frame, then the same bytes again: a replay, which passes every check but the stage's step order. */
    REPLAY;

    public static FrameFault parse(String kind) {
        try {
            return valueOf(kind.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown fault '" + kind + "' (flip, truncate, version, forge or replay)");
        }
    }

    /** Whether the fault sends a frame beside the genuine one ({@link #extraFrame}) instead of corrupting it. */
    boolean addsFrame() {
        return this == FORGE || this == REPLAY;
    }

    /** FORGE: the tampered copy (CRC recomputed); REPLAY: a plain copy; allocated in {@code arena}. */
    MemorySegment extraFrame(MemorySegment frame, long length, int sealBytes, java.lang.foreign.Arena arena) {
        MemorySegment copy = arena.allocate(length);
        MemorySegment.copy(frame, 0, copy, 0, length);
        if (this == FORGE) {
            long crcAt = length - Integer.BYTES;
            long at = crcAt - sealBytes - 1; // the payload's last byte
            copy.set(ValueLayout.JAVA_BYTE, at, (byte) (copy.get(ValueLayout.JAVA_BYTE, at) ^ 0x10));
            java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
            crc.update(copy.asSlice(0, crcAt).asByteBuffer());
            copy.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), crcAt, (int) crc.getValue());
        }
        return copy;
    }

    /** @return the length of the frame to send after corruption */
    long apply(MemorySegment frame, long length, int versionOffset) {
        return switch (this) {
            case FLIP -> {
                long at = length / 2;
                frame.set(ValueLayout.JAVA_BYTE, at, (byte) (frame.get(ValueLayout.JAVA_BYTE, at) ^ 0x10));
                yield length;
            }
            case TRUNCATE -> length - Math.max(1, length / 3);
            case VERSION -> {
                frame.set(ValueLayout.JAVA_BYTE, versionOffset, (byte) 99);
                yield length;
            }
            case FORGE, REPLAY -> throw new IllegalStateException(this + " adds a frame: extraFrame(), not apply()");
        };
    }
}
