package io.bitrelay.runtime.wire;

import java.security.SecureRandom;

/**
 * The nonces one sending seal uses: 4 bytes naming this sender (random, drawn once) then a 64-bit count of the frames
 * it sealed, little-endian; {@link #BYTES} in all. Under one link key (one pipeline, one link, one algorithm: see
 * {@link LinkFrameKeys}) there is one sender, whose count only goes up, so no nonce repeats; the random sender id
 * keeps that true even if a second sender were ever made for the same link and key (both would need the same 32-bit
 * id, and overlapping counts, to collide). The count comes from the sender, not from the frame's batch id and step:
 * those repeat when a stage re-creates a batch it had forgotten, and a repeated nonce with other bytes would give
 * away the authentication key.
 */
final class FrameNonces {
    static final int BYTES = 12;

    private final int senderId = new SecureRandom().nextInt();
    private long sealed;

    /** Writes the next nonce into {@code nonce}; refuses to wrap the count (2^64 frames: never in practice). */
    void next(byte[] nonce) {
        if (sealed == -1L) {
            throw new IllegalStateException("2^64 frames sealed under one link key: the nonce would repeat");
        }
        long count = sealed++;
        for (int i = 0; i < 4; i++) {
            nonce[i] = (byte) (senderId >>> (8 * i));
        }
        for (int i = 0; i < 8; i++) {
            nonce[4 + i] = (byte) (count >>> (8 * i));
        }
    }
}
