package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.wire.FrameException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.zip.CRC32C;

import static io.bitrelay.runtime.wire.LinkFrame.*;
import static io.bitrelay.runtime.wire.WireTestData.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Frames of an authenticated link: a forger who can compute a CRC but has not the key gets nothing through. */
@Timeout(60)
class AuthenticatedLinkFrameTest {
    private static final LinkCodec INT8 = LinkCodecs.forName("int8");
    private static final int ROWS = 5;
    private static final int WIDTH = 96;

    private final byte[] key = FrameAuthenticator.newKey();

    @Test
    void shouldRoundTripATaggedFrameUnderTheLinkKey() {
        float[] values = hiddenStates(ROWS, WIDTH, 7);
        MemorySegment frame = tagged(key, values);
        assertEquals(LinkFrame.frameBytes(INT8, LinkFrameTest.layoutFor(ROWS).encodedBytes(), ROWS, WIDTH)
                + FrameAuthenticator.TAG_BYTES, frame.byteSize());

        LinkFrameReader reader = new LinkFrameReader().requireTag(new FrameAuthenticator(key)).wrap(frame);
        assertEquals(77L, reader.batchId());
        assertEquals(3, reader.step());
        MemorySegment out = zeros((long) ROWS * WIDTH * Float.BYTES);
        reader.decodeInto(out);
        MemorySegment untaggedOut = zeros((long) ROWS * WIDTH * Float.BYTES);
        new LinkFrameReader().wrap(untagged(values)).decodeInto(untaggedOut);
        assertArrayEquals(floats(untaggedOut, ROWS * WIDTH), floats(out, ROWS * WIDTH), "same decode as an untagged frame");
    }

    @Test
    void shouldRejectEveryTamperedByteEvenWithItsCrcRecomputed() {
        MemorySegment frame = tagged(key, hiddenStates(ROWS, WIDTH, 11));
        long tagAt = frame.byteSize() - FrameAuthenticator.TAG_BYTES;
        int rejected = 0;
        for (long at = 0; at < frame.byteSize(); at++) {
            MemorySegment forged = copyOf(frame);
            forged.set(ValueLayout.JAVA_BYTE, at, (byte) (forged.get(ValueLayout.JAVA_BYTE, at) ^ 0x01));
            if (at < tagAt - CRC_BYTES) {
                recomputeCrc(forged, tagAt - CRC_BYTES); // what a forger can always do
            }
            FrameException e = assertThrows(FrameException.class,
                    () -> new LinkFrameReader().requireTag(new FrameAuthenticator(key)).wrap(forged), "byte " + at);
            rejected++;
            // header bytes may trip an earlier check (magic, sizes) first, the CRC's own bytes the CRC: refused either way
            if (at >= HEADER_BYTES && (at < tagAt - CRC_BYTES || at >= tagAt)) {
                assertEquals(Reason.BAD_TAG, e.reason(), "byte " + at + ": " + e.getMessage());
            }
        }
        assertEquals(frame.byteSize(), rejected);
    }

    @Test
    void shouldRejectAFrameTaggedUnderAnotherKey() {
        MemorySegment forged = tagged(FrameAuthenticator.newKey(), hiddenStates(ROWS, WIDTH, 13));
        FrameException e = assertThrows(FrameException.class,
                () -> new LinkFrameReader().requireTag(new FrameAuthenticator(key)).wrap(forged));
        assertEquals(Reason.BAD_TAG, e.reason());
    }

    @Test
    void shouldRejectAnUntaggedFrameOnAnAuthenticatedLinkAndATaggedOneOnAPlainLink() {
        float[] values = hiddenStates(ROWS, WIDTH, 17);
        FrameException missing = assertThrows(FrameException.class,
                () -> new LinkFrameReader().requireTag(new FrameAuthenticator(key)).wrap(untagged(values)));
        assertEquals(Reason.BAD_TAG, missing.reason());
        FrameException unexpected = assertThrows(FrameException.class, () -> new LinkFrameReader().wrap(tagged(key, values)));
        assertEquals(Reason.BAD_TAG, unexpected.reason());
    }

    @Test
    void shouldRefuseKeysOfTheWrongLength() {
        assertThrows(IllegalArgumentException.class, () -> new FrameAuthenticator(new byte[16]));
        assertThrows(IllegalArgumentException.class, () -> new FrameAuthenticator(null));
    }

    private static MemorySegment tagged(byte[] key, float[] values) {
        return write(new LinkFrameWriter().authenticateWith(new FrameAuthenticator(key)), values);
    }

    private static MemorySegment untagged(float[] values) {
        return write(new LinkFrameWriter(), values);
    }

    private static MemorySegment write(LinkFrameWriter writer, float[] values) {
        BatchLayout layout = LinkFrameTest.layoutFor(ROWS);
        long bytes = LinkFrame.frameBytes(INT8, layout.encodedBytes(), ROWS, WIDTH) + writer.tagBytes();
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
