package io.bitrelay.runtime.wire;

import javax.crypto.KDF;
import javax.crypto.SecretKey;
import javax.crypto.spec.HKDFParameterSpec;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;

/**
 * The keys link frames are sealed with. The coordinator draws one {@link #PIPELINE_KEY_BYTES}-byte key per placed
 * pipeline; each link (source stage to target stage) and algorithm gets its own key from it through HKDF-SHA256
 * (RFC 5869, the JDK's {@link KDF}). Separate keys per link mean a frame's nonce only has to be unique among the
 * frames of its own link, which has one sender; and a frame moved to another link fails its tag.
 */
public final class LinkFrameKeys {
    /** 256 bits drawn per pipeline. */
    public static final int PIPELINE_KEY_BYTES = 32;
    private static final String KDF_ALGORITHM = "HKDF-SHA256";

    private LinkFrameKeys() {
    }

    /** A fresh random pipeline key (a new one per placed pipeline). */
    public static byte[] newPipelineKey() {
        byte[] key = new byte[PIPELINE_KEY_BYTES];
        new SecureRandom().nextBytes(key);
        return key;
    }

    /**
     * The key of the link from {@code sourceStage} to {@code targetStage} for {@code cipherAlgorithm}, as a key of
     * {@code keyAlgorithm} ("ChaCha20", "AES") of {@code keyBytes}.
     */
    static SecretKey linkKey(byte[] pipelineKey, String cipherAlgorithm, String keyAlgorithm, int keyBytes,
                             int sourceStage, int targetStage) {
        if (pipelineKey == null || pipelineKey.length != PIPELINE_KEY_BYTES) {
            throw new IllegalArgumentException("a pipeline's link key has " + PIPELINE_KEY_BYTES + " bytes, got "
                    + (pipelineKey == null ? "none" : pipelineKey.length));
        }
        if (sourceStage < 0 || targetStage < 0) {
            throw new IllegalArgumentException("stages are >= 0, got " + sourceStage + " to " + targetStage);
        }
        byte[] info = ("bitrelay link frames v1 " + cipherAlgorithm + " stage " + sourceStage + " to stage " + targetStage)
                .getBytes(StandardCharsets.US_ASCII);
        try {
            return KDF.getInstance(KDF_ALGORITHM).deriveKey(keyAlgorithm,
                    HKDFParameterSpec.ofExtract().addIKM(pipelineKey).thenExpand(info, keyBytes));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK cannot derive a " + keyAlgorithm + " key with " + KDF_ALGORITHM, e);
        }
    }
}
