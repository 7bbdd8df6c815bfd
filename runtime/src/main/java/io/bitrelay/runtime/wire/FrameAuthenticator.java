package io.bitrelay.runtime.wire;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.lang.foreign.MemorySegment;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;

/**
 * The tag that proves a link frame came from a member of the pipeline: HMAC-SHA256 (the JDK's {@link Mac}) under
 * the pipeline's link key, over every byte of the frame before the tag (header with batch id and step, sections,
 * CRC), truncated to {@link #TAG_BYTES} (RFC 2104 §5 allows truncation to half the output and no less than 80 bits).
 * HMAC rather than AES-GCM's GMAC: GCM needs a nonce that never repeats under one key, and a replayed step after a
 * failover would be exactly such a repeat. Not thread-safe: one per sending or receiving thread.
 */
public final class FrameAuthenticator {
    /** 128 bits of tag. */
    public static final int TAG_BYTES = 16;
    /** HMAC-SHA256's block-sized key, as RFC 2104 recommends for full strength. */
    public static final int KEY_BYTES = 32;
    private static final String ALGORITHM = "HmacSHA256";

    private final Mac mac;
    private final byte[] computed = new byte[32];
    private final byte[] expected = new byte[TAG_BYTES];
    private final byte[] carried = new byte[TAG_BYTES];

    public FrameAuthenticator(byte[] key) {
        if (key == null || key.length != KEY_BYTES) {
            throw new IllegalArgumentException("a link key has " + KEY_BYTES + " bytes, got "
                    + (key == null ? "none" : key.length));
        }
        try {
            mac = Mac.getInstance(ALGORITHM);
            mac.init(new SecretKeySpec(key, ALGORITHM));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK has no " + ALGORITHM, e);
        }
    }

    /** A fresh random link key (a new one per placed pipeline). */
    public static byte[] newKey() {
        byte[] key = new byte[KEY_BYTES];
        new SecureRandom().nextBytes(key);
        return key;
    }

    /** Writes the tag of the first {@code covered} bytes of {@code frame} right after them. */
    public void sign(MemorySegment frame, long covered) {
        compute(frame, covered);
        MemorySegment.copy(MemorySegment.ofArray(computed), 0, frame, covered, TAG_BYTES);
    }

    /** Whether the {@link #TAG_BYTES} after the first {@code covered} bytes are their tag (constant-time compare). */
    public boolean verify(MemorySegment frame, long covered) {
        compute(frame, covered);
        MemorySegment.copy(frame, covered, MemorySegment.ofArray(carried), 0, TAG_BYTES);
        System.arraycopy(computed, 0, expected, 0, TAG_BYTES);
        return MessageDigest.isEqual(expected, carried);
    }

    private void compute(MemorySegment frame, long covered) {
        mac.reset();
        mac.update(frame.asSlice(0, covered).asByteBuffer());
        try {
            mac.doFinal(computed, 0);
        } catch (javax.crypto.ShortBufferException e) {
            throw new IllegalStateException(e);
        }
    }
}
