package io.bitrelay.runtime.wire;

/**
 * What a pipeline's links do to their frames ({@code bitrelay.security.authenticate-links} and
 * {@code encrypt-links}, docs/security.md): nothing, authenticate them, or authenticate and encrypt them.
 */
public enum LinkProtection {
    /** Frames travel as written: for a data plane nobody else reaches. */
    NONE,
    /** Every frame carries a ChaCha20-Poly1305 tag over all its bytes ({@link AuthenticatingFrameSeal}). */
    AUTHENTICATED,
    /** Every frame's sections are AES-256-GCM ciphertext, its header authenticated ({@link EncryptingFrameSeal}). */
    ENCRYPTED;

    /** The protection the two settings ask for; encryption without authentication is refused, naming both keys. */
    public static LinkProtection of(boolean authenticate, boolean encrypt) {
        if (encrypt && !authenticate) {
            throw new IllegalArgumentException("bitrelay.security.encrypt-links = on needs "
                    + "bitrelay.security.authenticate-links = on (an encrypted frame is authenticated too; "
                    + "turning authentication off while asking for encryption is a contradiction)");
        }
        return encrypt ? ENCRYPTED : authenticate ? AUTHENTICATED : NONE;
    }

    /**
     * A fresh seal for frames from {@code sourceStage} to {@code targetStage} under {@code pipelineKey} (one per
     * thread; a sender's seal numbers the frames it seals, so never make two for the same link on the sending side).
     */
    public FrameSeal newSeal(byte[] pipelineKey, int sourceStage, int targetStage) {
        return switch (this) {
            case NONE -> throw new IllegalStateException("links without protection carry no seal");
            case AUTHENTICATED -> new AuthenticatingFrameSeal(pipelineKey, sourceStage, targetStage);
            case ENCRYPTED -> new EncryptingFrameSeal(pipelineKey, sourceStage, targetStage);
        };
    }
}
