package io.bitrelay.runtime.wire;

import java.lang.foreign.MemorySegment;

/**
 * What a link puts on every frame so the receiver knows a member of its pipeline made it (and, on an encrypted link,
 * so nobody else can read it): the sender seals the frame once its sections are written, the receiver opens it after
 * the CRC matched. The seal's trailer sits between the sections and the CRC, so the CRC covers it and a frame
 * corrupted on the way fails by its CRC first. Implementations: {@link AuthenticatingFrameSeal} and
 * {@link EncryptingFrameSeal}, one per {@link LinkProtection}. Not thread-safe: one per sending or receiving thread.
 */
public interface FrameSeal {

    /** Bytes the seal adds to every frame, right after its sections. */
    int trailerBytes();

    /**
     * Seals a frame whose header and sections are its first {@code sectionsEnd} bytes, writing the
     * {@link #trailerBytes()} after them (an encrypting seal also encrypts the sections in place).
     */
    void seal(MemorySegment frame, long sectionsEnd);

    /**
     * Opens a sealed frame: throws {@link FrameException} {@code BAD_TAG} unless this link's key sealed exactly these
     * bytes. An encrypting seal decrypts the sections in place, and only once they proved genuine.
     */
    void open(MemorySegment frame, long sectionsEnd);
}
