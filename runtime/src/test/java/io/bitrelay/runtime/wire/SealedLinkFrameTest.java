package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.wire.FrameException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Set;
import java.util.zip.CRC32C;

import static io.bitrelay.runtime.wire.LinkFrame.*;
import static io.bitrelay.runtime.wire.WireTestData.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Frames of a protected link, authenticated or encrypted: a forger who can compute a CRC but has not the link's key
 * gets nothing through, and an encrypted frame shows nothing of what it carries.
 */
@Timeout(60)
class SealedLinkFrameTest {
    private static final LinkCodec INT8 = LinkCodecs.forName("int8");
    private static final int ROWS = 5;
    private static final int WIDTH = 96;
    private static final int SEAL_BYTES = 28;

    private final byte[] key = LinkFrameKeys.newPipelineKey();

    @ParameterizedTest
    @EnumSource(value = LinkProtection.class, names = {"AUTHENTICATED", "ENCRYPTED"})
    void shouldRoundTripASealedFrameUnderTheLinkKey(LinkProtection protection) {
        float[] values = hiddenStates(ROWS, WIDTH, 7);
        MemorySegment frame = sealed(protection.newSeal(key, 1, 2), values);
        assertEquals(LinkFrame.frameBytes(INT8, LinkFrameTest.layoutFor(ROWS).encodedBytes(), ROWS, WIDTH) + SEAL_BYTES,
                frame.byteSize());

        LinkFrameReader reader = new LinkFrameReader().requireSeal(protection.newSeal(key, 1, 2)).wrap(frame);
        assertEquals(77L, reader.batchId());
        assertEquals(3, reader.step());
        assertEquals(LinkFrameTest.layoutFor(ROWS), reader.batchLayout(), "the layout, decrypted if it was encrypted");
        MemorySegment out = zeros((long) ROWS * WIDTH * Float.BYTES);
        reader.decodeInto(out);
        MemorySegment unsealedOut = zeros((long) ROWS * WIDTH * Float.BYTES);
        new LinkFrameReader().wrap(unsealed(values)).decodeInto(unsealedOut);
        assertArrayEquals(floats(unsealedOut, ROWS * WIDTH), floats(out, ROWS * WIDTH), "same decode as an unsealed frame");
    }

    @ParameterizedTest
    @EnumSource(value = LinkProtection.class, names = {"AUTHENTICATED", "ENCRYPTED"})
    void shouldRejectEveryTamperedByteEvenWithItsCrcRecomputed(LinkProtection protection) {
        MemorySegment frame = sealed(protection.newSeal(key, 1, 2), hiddenStates(ROWS, WIDTH, 11));
        long crcAt = frame.byteSize() - CRC_BYTES;
        LinkFrameReader reader = new LinkFrameReader().requireSeal(protection.newSeal(key, 1, 2));
        int rejected = 0;
        for (long at = 0; at < frame.byteSize(); at++) {
            MemorySegment forged = copyOf(frame);
            forged.set(ValueLayout.JAVA_BYTE, at, (byte) (forged.get(ValueLayout.JAVA_BYTE, at) ^ 0x01));
            if (at < crcAt) {
                recomputeCrc(forged, crcAt); // what a forger can always do
            }
            FrameException e = assertThrows(FrameException.class, () -> reader.wrap(forged), "byte " + at);
            rejected++;
            // header bytes may trip an earlier check (magic, sizes) first, the CRC's own bytes the CRC: refused either way
            if (at >= HEADER_BYTES && at < crcAt) {
                assertEquals(Reason.BAD_TAG, e.reason(), "byte " + at + ": " + e.getMessage());
            }
        }
        assertEquals(frame.byteSize(), rejected, "every byte of the frame: header, sections, tag, nonce, CRC");
        reader.wrap(copyOf(frame)); // and the genuine frame still opens with the same reader
    }

    @ParameterizedTest
    @EnumSource(value = LinkProtection.class, names = {"AUTHENTICATED", "ENCRYPTED"})
    void shouldRejectAFrameOfAnotherPipelineOrAnotherLink(LinkProtection protection) {
        float[] values = hiddenStates(ROWS, WIDTH, 13);
        LinkFrameReader reader = new LinkFrameReader().requireSeal(protection.newSeal(key, 1, 2));
        FrameException otherKey = assertThrows(FrameException.class,
                () -> reader.wrap(sealed(protection.newSeal(LinkFrameKeys.newPipelineKey(), 1, 2), values)));
        assertEquals(Reason.BAD_TAG, otherKey.reason());
        FrameException otherLink = assertThrows(FrameException.class,
                () -> reader.wrap(sealed(protection.newSeal(key, 0, 1), values)), "same pipeline key, link 0 -> 1");
        assertEquals(Reason.BAD_TAG, otherLink.reason());
        LinkProtection other = protection == LinkProtection.ENCRYPTED ? LinkProtection.AUTHENTICATED : LinkProtection.ENCRYPTED;
        FrameException otherMode = assertThrows(FrameException.class,
                () -> reader.wrap(sealed(other.newSeal(key, 1, 2), values)), "same key and link, sealed " + other);
        assertEquals(Reason.BAD_TAG, otherMode.reason());
    }

    @ParameterizedTest
    @EnumSource(value = LinkProtection.class, names = {"AUTHENTICATED", "ENCRYPTED"})
    void shouldRejectAnUnsealedFrameOnAProtectedLinkAndASealedOneOnAPlainLink(LinkProtection protection) {
        float[] values = hiddenStates(ROWS, WIDTH, 17);
        FrameException missing = assertThrows(FrameException.class,
                () -> new LinkFrameReader().requireSeal(protection.newSeal(key, 1, 2)).wrap(unsealed(values)));
        assertEquals(Reason.BAD_TAG, missing.reason());
        FrameException unexpected = assertThrows(FrameException.class,
                () -> new LinkFrameReader().wrap(sealed(protection.newSeal(key, 1, 2), values)));
        assertEquals(Reason.BAD_TAG, unexpected.reason());
    }

    @ParameterizedTest
    @EnumSource(value = LinkProtection.class, names = {"AUTHENTICATED", "ENCRYPTED"})
    void shouldNeverSealTwoFramesWithTheSameNonce(LinkProtection protection) {
        FrameSeal seal = protection.newSeal(key, 1, 2);
        float[] values = hiddenStates(ROWS, WIDTH, 19);
        Set<String> nonces = new HashSet<>();
        for (int i = 0; i < 1000; i++) {
            MemorySegment frame = sealed(seal, values); // the same batch, step and rows every time
            long nonceAt = frame.byteSize() - CRC_BYTES - 12;
            nonces.add(java.util.HexFormat.of().formatHex(frame.asSlice(nonceAt, 12).toArray(ValueLayout.JAVA_BYTE)));
        }
        assertEquals(1000, nonces.size());
    }

    @Test
    void shouldCarryNoPlaintextOnAnEncryptedLink() {
        float[] values = hiddenStates(ROWS, WIDTH, 23);
        MemorySegment plain = unsealed(values);
        long sectionsEnd = plain.byteSize() - CRC_BYTES;
        byte[] plaintext = plain.asSlice(HEADER_BYTES, sectionsEnd - HEADER_BYTES).toArray(ValueLayout.JAVA_BYTE);
        byte[] authenticated = sealed(LinkProtection.AUTHENTICATED.newSeal(key, 1, 2), values).toArray(ValueLayout.JAVA_BYTE);
        byte[] encrypted = sealed(LinkProtection.ENCRYPTED.newSeal(key, 1, 2), values).toArray(ValueLayout.JAVA_BYTE);
        // what follows the header: sections, seal and CRC (the header is the same in all three frames)
        byte[] authenticatedBody = java.util.Arrays.copyOfRange(authenticated, HEADER_BYTES, authenticated.length);
        byte[] encryptedBody = java.util.Arrays.copyOfRange(encrypted, HEADER_BYTES, encrypted.length);
        int window = 8;
        int inAuthenticated = 0;
        int inEncrypted = 0;
        for (int at = 0; at + window <= plaintext.length; at += window) {
            byte[] piece = java.util.Arrays.copyOfRange(plaintext, at, at + window);
            inAuthenticated += contains(authenticatedBody, piece) ? 1 : 0;
            inEncrypted += contains(encryptedBody, piece) ? 1 : 0;
        }
        int pieces = plaintext.length / window;
        assertEquals(pieces, inAuthenticated, "an authenticated frame carries its sections as they are");
        assertEquals(0, inEncrypted, "no 8 bytes of layout, params or payload appear in an encrypted frame");
        assertArrayEquals(plain.asSlice(0, HEADER_BYTES - 4).toArray(ValueLayout.JAVA_BYTE),
                java.util.Arrays.copyOf(encrypted, HEADER_BYTES - 4), "the header (all but the seal length) stays readable");
    }

    @Test
    void shouldRefuseBadKeysAndEncryptionWithoutAuthentication() {
        IllegalArgumentException shortKey = assertThrows(IllegalArgumentException.class,
                () -> LinkProtection.AUTHENTICATED.newSeal(new byte[16], 0, 1));
        assertTrue(shortKey.getMessage().contains("32 bytes, got 16"), shortKey.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LinkProtection.ENCRYPTED.newSeal(null, 0, 1));
        IllegalArgumentException contradiction = assertThrows(IllegalArgumentException.class,
                () -> LinkProtection.of(false, true));
        assertTrue(contradiction.getMessage().contains("bitrelay.security.encrypt-links")
                && contradiction.getMessage().contains("bitrelay.security.authenticate-links"), contradiction.getMessage());
        assertEquals(LinkProtection.NONE, LinkProtection.of(false, false));
        assertEquals(LinkProtection.AUTHENTICATED, LinkProtection.of(true, false));
        assertEquals(LinkProtection.ENCRYPTED, LinkProtection.of(true, true));
    }

    private static boolean contains(byte[] haystack, byte[] needle) {
        for (int at = 0; at + needle.length <= haystack.length; at++) {
            if (java.util.Arrays.equals(haystack, at, at + needle.length, needle, 0, needle.length)) {
                return true;
            }
        }
        return false;
    }

    private static MemorySegment sealed(FrameSeal seal, float[] values) {
        return write(new LinkFrameWriter().sealWith(seal), values);
    }

    private static MemorySegment unsealed(float[] values) {
        return write(new LinkFrameWriter(), values);
    }

    private static MemorySegment write(LinkFrameWriter writer, float[] values) {
        BatchLayout layout = LinkFrameTest.layoutFor(ROWS);
        long bytes = LinkFrame.frameBytes(INT8, layout.encodedBytes(), ROWS, WIDTH) + writer.sealBytes();
        writer.wrap(zeros(bytes)).batchId(77).step(3).stages(1, 2).encode(INT8, layout, segment(values), ROWS, WIDTH);
        return writer.frame();
    }

    private static MemorySegment copyOf(MemorySegment frame) {
        MemorySegment copy = zeros(frame.byteSize()).asSlice(0, frame.byteSize());
        MemorySegment.copy(frame, 0, copy, 0, frame.byteSize());
        return copy;
    }

    private static void recomputeCrc(MemorySegment frame, long crcAt) {
        CRC32C crc = new CRC32C();
        crc.update(frame.asSlice(0, crcAt).asByteBuffer());
        frame.set(I32, crcAt, (int) crc.getValue());
    }
}
