package io.bitrelay.actors.dataplane;

import io.aeron.logbuffer.FrameDescriptor;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The reassembly state machine, fed fragments by hand (no driver): what is delivered, what is dropped and why. */
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class FrameReassemblerTest {

    private static final byte BEGIN = FrameDescriptor.BEGIN_FRAG_FLAG;
    private static final byte END = FrameDescriptor.END_FRAG_FLAG;
    private static final byte UNFRAGMENTED = FrameDescriptor.UNFRAGMENTED;
    private static final int SESSION = 7;

    private final Link link = new Link(1, 2, "aeron:ipc", 1001);
    private final List<byte[]> delivered = new ArrayList<>();
    private final List<String> drops = new ArrayList<>();
    private FrameReassembler reassembler = newReassembler(1 << 20);

    private FrameReassembler newReassembler(int maxFrameBytes) {
        return new FrameReassembler(link, frame -> delivered.add(frame.toArray(ValueLayout.JAVA_BYTE)),
                (l, sequence, reason) -> drops.add(sequence + ": " + reason),
                e -> { throw new AssertionError(e); }, 64, maxFrameBytes);
    }

    @AfterEach
    void close() {
        reassembler.close();
    }

    @Test
    void shouldDeliverOneChunkFrameInOneFragment() {
        byte[] frame = bytes(100, 1);
        sendChunk(SESSION, 0, frame, 0, 1, 0, frame.length, frame.length);
        assertEquals(1, delivered.size());
        assertArrayEquals(frame, delivered.getFirst());
        assertEquals(List.of(), drops);
    }

    @Test
    void shouldReassembleChunksCutIntoFragments() {
        byte[] frame = bytes(1000, 2);
        // 3 chunks of at most 400 bytes, each sent as fragments of at most 96 bytes
        for (int i = 0, offset = 0; i < 3; i++) {
            int length = Math.min(400, frame.length - offset);
            sendChunk(SESSION, 5, frame, i, 3, offset, length, 96);
            offset += length;
        }
        assertEquals(1, delivered.size());
        assertArrayEquals(frame, delivered.getFirst());
        assertEquals(3, reassembler.stats().chunksReceived());
    }

    @Test
    void shouldDeliverEmptyFrame() {
        sendChunk(SESSION, 0, new byte[0], 0, 1, 0, 0, 1000);
        assertEquals(1, delivered.size());
        assertEquals(0, delivered.getFirst().length);
    }

    @Test
    void shouldDropFrameWithMissingChunkAndDeliverTheNext() {
        byte[] broken = bytes(400, 3);
        sendChunk(SESSION, 0, broken, 0, 4, 0, 100, 1000);
        sendChunk(SESSION, 0, broken, 1, 4, 100, 100, 1000);
        sendChunk(SESSION, 0, broken, 3, 4, 300, 100, 1000); // chunk 2 never came
        byte[] next = bytes(150, 4);
        sendChunk(SESSION, 1, next, 0, 2, 0, 100, 1000);
        sendChunk(SESSION, 1, next, 1, 2, 100, 50, 1000);

        assertEquals(1, delivered.size());
        assertArrayEquals(next, delivered.getFirst());
        assertEquals(1, drops.size(), drops::toString);
        assertTrue(drops.getFirst().startsWith("0: missing chunk 2 of 4"), drops::toString);
        assertEquals(1, reassembler.stats().framesDropped());
    }

    @Test
    void shouldDropFrameCutShortByTheNextFrameAndDeliverThatOne() {
        byte[] broken = bytes(300, 5);
        sendChunk(SESSION, 0, broken, 0, 3, 0, 100, 1000);
        byte[] next = bytes(80, 6);
        sendChunk(SESSION, 1, next, 0, 1, 0, 80, 1000);

        assertEquals(1, delivered.size());
        assertArrayEquals(next, delivered.getFirst());
        assertEquals(1, drops.size());
        assertTrue(drops.getFirst().startsWith("0: cut short after 1 of 3 chunks"), drops::toString);
    }

    @Test
    void shouldDropFrameWhoseChunkDisagreesOnTheTotal() {
        byte[] frame = bytes(200, 7);
        sendChunk(SESSION, 0, frame, 0, 2, 0, 100, 1000);
        // chunk 1 claims the frame is 250 bytes
        UnsafeBuffer message = new UnsafeBuffer(new byte[ChunkHeader.LENGTH + 100]);
        ChunkHeader.encode(message, 0, 0, 250, 1, 2, 100);
        reassembler.onFragment(message, 0, message.capacity(), UNFRAGMENTED, SESSION);

        assertEquals(0, delivered.size());
        assertEquals(1, drops.size());
        assertTrue(drops.getFirst().contains("says the frame has 250 bytes"), drops::toString);
    }

    @Test
    void shouldReportChunksWithoutTheirStartOncePerFrame() {
        byte[] frame = bytes(300, 8);
        sendChunk(SESSION, 4, frame, 1, 3, 100, 100, 1000);
        sendChunk(SESSION, 4, frame, 2, 3, 200, 100, 1000);

        assertEquals(0, delivered.size());
        assertEquals(List.of("4: chunk 1 of 3 arrived without chunk 0"), drops);
    }

    @Test
    void shouldDropFrameWhenAnotherSessionInterleaves() {
        byte[] frame = bytes(200, 9);
        sendChunk(SESSION, 0, frame, 0, 2, 0, 100, 1000);
        sendChunk(SESSION + 1, 0, frame, 1, 2, 100, 100, 1000);

        assertEquals(0, delivered.size());
        assertTrue(drops.getFirst().contains("from publisher session 8 interleaved"), drops::toString);
    }

    @Test
    void shouldDropChunkCutShortBeforeItsEnd() {
        byte[] frame = bytes(100, 10);
        UnsafeBuffer message = new UnsafeBuffer(new byte[ChunkHeader.LENGTH + 100]);
        ChunkHeader.encode(message, 0, 0, 100, 0, 1, 100);
        message.putBytes(ChunkHeader.LENGTH, frame);
        reassembler.onFragment(message, 0, ChunkHeader.LENGTH + 60, BEGIN, SESSION); // its END never comes
        byte[] next = bytes(10, 11);
        sendChunk(SESSION, 1, next, 0, 1, 0, 10, 1000);

        assertEquals(1, delivered.size());
        assertArrayEquals(next, delivered.getFirst());
        assertTrue(drops.getFirst().startsWith("0: chunk 0 of 1 was cut short by a new message"), drops::toString);
    }

    @Test
    void shouldRejectFrameLargerThanTheLimitWithoutAllocating() {
        reassembler.close();
        reassembler = newReassembler(1000);
        UnsafeBuffer message = new UnsafeBuffer(new byte[ChunkHeader.LENGTH + 10]);
        ChunkHeader.encode(message, 0, 3, 2000, 0, 200, 10);
        reassembler.onFragment(message, 0, message.capacity(), UNFRAGMENTED, SESSION);

        assertEquals(List.of("3: frame of 2000 bytes exceeds max-frame-bytes 1000"), drops);
        assertEquals(0, reassembler.reassemblyCapacityBytes());
    }

    @Test
    void shouldKeepDeliveringAfterTheHandlerThrows() {
        List<Throwable> failures = new ArrayList<>();
        reassembler.close();
        reassembler = new FrameReassembler(link, frame -> {
            if (frame.byteSize() == 13) {
                throw new IllegalStateException("boom");
            }
            delivered.add(frame.toArray(ValueLayout.JAVA_BYTE));
        }, (l, s, r) -> drops.add(r), failures::add, 64, 1 << 20);
        sendChunk(SESSION, 0, bytes(13, 12), 0, 1, 0, 13, 1000);
        sendChunk(SESSION, 1, bytes(14, 13), 0, 1, 0, 14, 1000);

        assertEquals(1, failures.size());
        assertEquals(1, delivered.size());
        assertEquals(1, reassembler.stats().handlerFailures());
    }

    @Test
    void shouldGrowTheReassemblyBufferForLargerFrames() {
        byte[] small = bytes(50, 14);
        byte[] large = bytes(5000, 15);
        sendChunk(SESSION, 0, small, 0, 1, 0, small.length, 1000);
        sendChunk(SESSION, 1, large, 0, 1, 0, large.length, 1000);
        sendChunk(SESSION, 2, small, 0, 1, 0, small.length, 1000);

        assertEquals(3, delivered.size());
        assertArrayEquals(large, delivered.get(1));
        assertArrayEquals(small, delivered.get(2));
        assertTrue(reassembler.reassemblyCapacityBytes() >= 5000);
    }

    /** One chunk as one Aeron message, cut into fragments of at most {@code fragmentBytes}. */
    private void sendChunk(int session, long sequence, byte[] frame, int index, int count, int offset, int length,
                           int fragmentBytes) {
        UnsafeBuffer message = new UnsafeBuffer(new byte[ChunkHeader.LENGTH + length]);
        ChunkHeader.encode(message, 0, sequence, frame.length, index, count, length);
        message.putBytes(ChunkHeader.LENGTH, frame, offset, length);
        int total = message.capacity();
        for (int position = 0; position < total; position += fragmentBytes) {
            int fragment = Math.min(fragmentBytes, total - position);
            byte flags = (byte) ((position == 0 ? BEGIN : 0) | (position + fragment == total ? END : 0));
            reassembler.onFragment(message, position, fragment, flags, session);
        }
    }

    private static byte[] bytes(int length, int seed) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }
}
