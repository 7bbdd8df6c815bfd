package io.bitrelay.runtime.wire;

import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.security.GeneralSecurityException;

import static io.bitrelay.runtime.wire.LinkFrame.HEADER_BYTES;

/**
 * {@link LinkProtection#ENCRYPTED}: AES-256-GCM (NIST SP 800-38D, the JDK's cipher) over the frame's sections —
 * layout (which sequences, scoring targets), codec params and activations become ciphertext — with the header as
 * associated data, so batch id, step, stages and sizes stay readable for the checks before it and are authenticated
 * all the same. The trailer is GCM's 16-byte tag, then the 12-byte nonce ({@link FrameNonces}).
 *
 * <p>AES-GCM rather than ChaCha20-Poly1305 here: the JDK's AES-GCM intrinsic (VAES + VPCLMULQDQ, AVX-512) encrypts and
 * authenticates at ~7 GB/s per core through the staging array on the development machine, its ChaCha20-Poly1305 at
 * ~2.4 GB/s (docs/security.md). The sender encrypts a chunk at a time through
 * a small heap array; the receiver has to hand the JDK the whole ciphertext at once (its GCM decryption holds back all
 * plaintext until the tag is checked, buffering it in an array of its own otherwise), and into another array: decrypting
 * in place skips the combined intrinsic for separate GHASH and AES-CTR passes (3.7 against 6.5 GB/s). So it keeps
 * two heap arrays as large as the largest frame it opened, grown only when a larger one comes.
 */
public final class EncryptingFrameSeal extends AeadFrameSeal {
    /** The receiver's copy of a whole ciphertext and tag, and the plaintext it decrypts to; grow to the largest frame. */
    private byte[] opening = new byte[0];
    private byte[] opened = new byte[0];

    EncryptingFrameSeal(byte[] pipelineKey, int sourceStage, int targetStage) {
        super("AES/GCM/NoPadding", "AES", pipelineKey, sourceStage, targetStage);
    }

    @Override
    public void seal(MemorySegment frame, long sectionsEnd) {
        nonces.next(nonce);
        byte[] chunk = staging.chunk;
        try {
            cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(TAG_BYTES * 8, nonce));
            staging.updateAad(cipher, frame, 0, HEADER_BYTES);
            long at = HEADER_BYTES;
            for (; sectionsEnd - at > HeapStaging.CHUNK_BYTES; at += HeapStaging.CHUNK_BYTES) {
                MemorySegment.copy(frame, ValueLayout.JAVA_BYTE, at, chunk, 0, HeapStaging.CHUNK_BYTES);
                int written = cipher.update(chunk, 0, HeapStaging.CHUNK_BYTES, chunk, 0);
                if (written != HeapStaging.CHUNK_BYTES) { // the chunk is whole AES blocks: nothing is held back
                    throw new IllegalStateException("AES-GCM returned " + written + " of " + HeapStaging.CHUNK_BYTES + " bytes");
                }
                MemorySegment.copy(chunk, 0, frame, ValueLayout.JAVA_BYTE, at, written);
            }
            int last = (int) (sectionsEnd - at);
            MemorySegment.copy(frame, ValueLayout.JAVA_BYTE, at, chunk, 0, last);
            int written = cipher.doFinal(chunk, 0, last, chunk, 0); // the last ciphertext, then the tag
            if (written != last + TAG_BYTES) {
                throw new IllegalStateException("AES-GCM returned " + written + " bytes for the last " + last);
            }
            MemorySegment.copy(chunk, 0, frame, ValueLayout.JAVA_BYTE, at, written); // ciphertext, then tag at sectionsEnd
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(algorithm + " failed to encrypt a frame: " + e.getMessage(), e);
        }
        MemorySegment.copy(nonce, 0, frame, ValueLayout.JAVA_BYTE, sectionsEnd + TAG_BYTES, FrameNonces.BYTES);
    }

    @Override
    public void open(MemorySegment frame, long sectionsEnd) {
        MemorySegment.copy(frame, ValueLayout.JAVA_BYTE, sectionsEnd + TAG_BYTES, nonce, 0, FrameNonces.BYTES);
        int sealed = (int) (sectionsEnd - HEADER_BYTES + TAG_BYTES); // ciphertext and tag, back to back in the frame
        if (opening.length < sealed) {
            opening = new byte[sealed];
            opened = new byte[sealed];
        }
        MemorySegment.copy(frame, ValueLayout.JAVA_BYTE, HEADER_BYTES, opening, 0, sealed);
        int plain;
        try {
            cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(TAG_BYTES * 8, nonce));
            staging.updateAad(cipher, frame, 0, HEADER_BYTES);
            plain = cipher.doFinal(opening, 0, sealed, opened, 0);
        } catch (AEADBadTagException e) {
            throw new FrameException(FrameException.Reason.BAD_TAG, "tag does not match the link key over the header and "
                    + (sealed - TAG_BYTES) + " encrypted bytes (forged, tampered, or from another link or pipeline)");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(algorithm + " failed to decrypt a frame: " + e.getMessage(), e);
        }
        MemorySegment.copy(opened, 0, frame, ValueLayout.JAVA_BYTE, HEADER_BYTES, plain);
    }
}
