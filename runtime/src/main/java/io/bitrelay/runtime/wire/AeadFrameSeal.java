package io.bitrelay.runtime.wire;

import javax.crypto.Cipher;
import javax.crypto.SecretKey;
import java.security.GeneralSecurityException;

/**
 * What both frame seals share: one JDK AEAD cipher under the link's own key (derived from the pipeline's for this
 * source → target pair), a fresh nonce a frame ({@link FrameNonces}), the heap staging the cipher reads through,
 * and the trailer: a 16-byte tag, then the 12-byte nonce. Not thread-safe: one link's sender or receiver owns it.
 */
abstract class AeadFrameSeal implements FrameSeal {
    static final int TAG_BYTES = 16;

    final String algorithm;
    final SecretKey key;
    final Cipher cipher;
    final FrameNonces nonces = new FrameNonces();
    final byte[] nonce = new byte[FrameNonces.BYTES];
    final HeapStaging staging = new HeapStaging();

    /** @param keyAlgorithm the key's algorithm for the JDK ("ChaCha20", "AES"), 32 bytes long */
    AeadFrameSeal(String algorithm, String keyAlgorithm, byte[] pipelineKey, int sourceStage, int targetStage) {
        this.algorithm = algorithm;
        this.key = LinkFrameKeys.linkKey(pipelineKey, algorithm, keyAlgorithm, 32, sourceStage, targetStage);
        try {
            this.cipher = Cipher.getInstance(algorithm);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK has no " + algorithm, e);
        }
    }

    @Override
    public final int trailerBytes() {
        return TAG_BYTES + FrameNonces.BYTES;
    }
}
