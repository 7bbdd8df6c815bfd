package io.bitrelay.deploy.bench;

import io.bitrelay.runtime.wire.FrameException;
import io.bitrelay.runtime.wire.FrameSeal;

import javax.crypto.Mac;
import javax.crypto.ShortBufferException;
import javax.crypto.spec.SecretKeySpec;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;

/**
 * The seal authenticated links used before ChaCha20-Poly1305, kept only as {@link FrameAuthBench}'s baseline: an
 * HMAC-SHA256 tag over every byte before it, truncated to 16 bytes, computed as it was (the JDK's {@link Mac} over a
 * ByteBuffer view of the off-heap frame). No nonce.
 */
final class HmacSha256Seal implements FrameSeal {
    private static final String ALGORITHM = "HmacSHA256";
    private static final int TAG_BYTES = 16;

    private final Mac mac;
    private final byte[] computed = new byte[32];
    private final byte[] expected = new byte[TAG_BYTES];
    private final byte[] carried = new byte[TAG_BYTES];

    HmacSha256Seal(byte[] key) {
        try {
            mac = Mac.getInstance(ALGORITHM);
            mac.init(new SecretKeySpec(key, ALGORITHM));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK has no " + ALGORITHM, e);
        }
    }

    @Override
    public int trailerBytes() {
        return TAG_BYTES;
    }

    @Override
    public void seal(MemorySegment frame, long sectionsEnd) {
        compute(frame, sectionsEnd);
        MemorySegment.copy(computed, 0, frame, ValueLayout.JAVA_BYTE, sectionsEnd, TAG_BYTES);
    }

    @Override
    public void open(MemorySegment frame, long sectionsEnd) {
        compute(frame, sectionsEnd);
        MemorySegment.copy(frame, ValueLayout.JAVA_BYTE, sectionsEnd, carried, 0, TAG_BYTES);
        System.arraycopy(computed, 0, expected, 0, TAG_BYTES);
        if (!MessageDigest.isEqual(expected, carried)) {
            throw new FrameException(FrameException.Reason.BAD_TAG, "HMAC-SHA256 tag does not match over " + sectionsEnd + " bytes");
        }
    }

    private void compute(MemorySegment frame, long covered) {
        mac.reset();
        mac.update(frame.asSlice(0, covered).asByteBuffer());
        try {
            mac.doFinal(computed, 0);
        } catch (ShortBufferException e) {
            throw new IllegalStateException(e);
        }
    }
}
