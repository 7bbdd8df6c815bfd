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
    VERSION;

    public static FrameFault parse(String kind) {
        try {
            return valueOf(kind.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown fault '" + kind + "' (flip, truncate or version)");
        }
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
        };
    }
}
