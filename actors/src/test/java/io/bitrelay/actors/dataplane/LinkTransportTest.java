package io.bitrelay.actors.dataplane;

import io.aeron.ExclusivePublication;
import org.agrona.CloseHelper;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Publisher → driver → subscriber in one JVM, through an embedded driver in a temporary directory: IPC links
 * (and one UDP link on loopback) carry frames whole, in order, under back-pressure, and fail or drop loudly.
 */
class LinkTransportTest {

    private static final int MIB = 1 << 20;

    @TempDir(factory = ShmTempDirFactory.class)
    static Path tempDir;

    private static MediaDriverHost host;
    private static final LinkChannels channels = new LinkChannels(LinkChannels.Settings.defaults());

    @BeforeAll
    static void startDriver() {
        host = MediaDriverHost.start(MediaDriverHost.Settings.defaults()
                .withAeronDirectory(tempDir.resolve("aeron"))
                .withMode(MediaDriverHost.DriverMode.EMBEDDED));
    }

    @AfterAll
    static void stopDriver() {
        CloseHelper.close(host);
    }

    @Test
    @Timeout(value = 30, unit = TimeUnit.SECONDS)
    void shouldDeliverSmallMediumAndChunkedFramesByteIdenticalInOrder() throws Exception {
        Link link = channels.link(0, "host-a", 1, "host-a");
        assertEquals("aeron:ipc", link.channel());
        try (Arena arena = Arena.ofShared();
             Collector collector = new Collector(arena);
             LinkSubscriber subscriber = collector.subscribe(link).start();
             LinkPublisher publisher = new LinkPublisher(host.aeron(), link, LinkPublisher.Settings.defaults())) {
            List<MemorySegment> frames = List.of(random(arena, 100, 1), random(arena, MIB, 2),
                    random(arena, 40 * MIB, 3), random(arena, 100, 4));
            for (MemorySegment frame : frames) {
                publisher.publish(frame);
            }
            for (MemorySegment expected : frames) {
                MemorySegment received = collector.next(20);
                assertEquals(expected.byteSize(), received.byteSize());
                assertEquals(-1, expected.mismatch(received), "frame of " + expected.byteSize() + " bytes differs");
            }
            long expectedChunks = frames.stream()
                    .mapToLong(f -> ChunkHeader.chunkCount((int) f.byteSize(), publisher.chunkPayloadBytes())).sum();
            assertTrue(expectedChunks > frames.size(), "40 MiB must be chunked");
            assertEquals(expectedChunks, publisher.stats().chunks());
            assertEquals(4, subscriber.stats().framesDelivered());
            assertEquals(0, subscriber.stats().framesDropped());
        }
    }

    @Test
    @Timeout(value = 20, unit = TimeUnit.SECONDS)
    void shouldDeliverEveryFrameToASlowConsumerUnderBackPressure() throws Exception {
        Link link = channels.link(2, "host-a", 3, "host-a");
        int frameCount = 96;
        int frameBytes = 512 * 1024; // 48 MiB in all: several times the publication window
        AtomicLong nextIndex = new AtomicLong();
        List<String> errors = new ArrayList<>();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment template = random(arena, frameBytes, 5);
            FrameHandler slowHandler = frame -> {
                long index = frame.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
                if (index != nextIndex.get() || frame.byteSize() != frameBytes
                        || frame.asSlice(8).mismatch(template.asSlice(8)) != -1) {
                    errors.add("frame " + index + " arrived when " + nextIndex.get() + " was expected, or differs");
                }
                nextIndex.incrementAndGet();
                sleepMillis(2);
            };
            DroppedFrameListener recordDrop = (l, sequence, reason) -> errors.add("dropped " + sequence + ": "
                    + reason);
            try (LinkSubscriber subscriber = new LinkSubscriber(host.aeron(), link, slowHandler, recordDrop,
                         LinkSubscriber.Settings.defaults()).start();
                 LinkPublisher publisher = new LinkPublisher(host.aeron(), link, LinkPublisher.Settings.defaults())) {
                for (long i = 0; i < frameCount; i++) {
                    template.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, i);
                    publisher.publish(template);
                }
                awaitCondition(() -> nextIndex.get() == frameCount, 15_000);

                assertEquals(List.of(), errors);
                assertEquals(frameCount, subscriber.stats().framesDelivered());
                LinkPublisher.Stats stats = publisher.stats();
                assertEquals(frameCount, stats.frames());
                assertTrue(stats.backPressured() > 0, "a 2 ms/frame consumer must push back: " + stats);
                assertTrue(stats.stalls() > 0 && stats.retries() >= stats.backPressured(), stats::toString);
            }
        }
    }

    @Test
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void shouldFailWithClearMessageWhenNoSubscriberConnects() {
        Link link = channels.link(1, "host-a", 2, "host-a");
        try (Arena arena = Arena.ofConfined();
             LinkPublisher publisher = new LinkPublisher(host.aeron(), link,
                     LinkPublisher.Settings.defaults().withPublishTimeoutMillis(300))) {
            MemorySegment frame = random(arena, 100, 6);
            long start = System.nanoTime();
            LinkException failure = assertThrows(LinkException.class, () -> publisher.publish(frame));
            long waitedMillis = (System.nanoTime() - start) / 1_000_000;

            assertEquals("no subscriber for link stage 1 → 2 on aeron:ipc stream 1001 after 300 ms",
                    failure.getMessage());
            assertEquals(LinkException.Reason.NOT_CONNECTED, failure.reason());
            assertTrue(waitedMillis >= 300 && waitedMillis < 5_000, "waited " + waitedMillis + " ms");
            assertTrue(publisher.stats().notConnected() > 0);
            assertEquals(0, publisher.stats().frames());
        }
    }

    @Test
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void shouldDropFrameWithMissingChunkAndStillDeliverTheNext() throws Exception {
        Link link = channels.link(4, "host-a", 5, "host-a");
        List<String> drops = new ArrayList<>();
        try (Arena arena = Arena.ofShared();
             Collector collector = new Collector(arena);
             LinkSubscriber subscriber = new LinkSubscriber(host.aeron(), link, collector,
                     (l, sequence, reason) -> { synchronized (drops) { drops.add(sequence + ": " + reason); } },
                     LinkSubscriber.Settings.defaults()).start();
             ExclusivePublication raw = host.aeron().addExclusivePublication(link.channel(), link.streamId())) {
            awaitCondition(raw::isConnected, 5_000);
            byte[] broken = randomBytes(4000, 7);
            offerChunk(raw, 0, broken, 0, 4, 0, 1000);
            offerChunk(raw, 0, broken, 1, 4, 1000, 1000);
            offerChunk(raw, 0, broken, 3, 4, 3000, 1000); // chunk 2 is missing
            byte[] next = randomBytes(1500, 8);
            offerChunk(raw, 1, next, 0, 2, 0, 1000);
            offerChunk(raw, 1, next, 1, 2, 1000, 500);

            MemorySegment received = collector.next(5);
            assertEquals(-1, MemorySegment.ofArray(next).mismatch(received));
            synchronized (drops) {
                assertEquals(1, drops.size(), drops::toString);
                assertTrue(drops.getFirst().startsWith("0: missing chunk 2 of 4"), drops::toString);
            }
            assertEquals(1, subscriber.stats().framesDropped());
            assertEquals(1, subscriber.stats().framesDelivered());
        }
    }

    @Test
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void shouldSendHeapSegmentsByteIdentical() throws Exception {
        Link link = channels.link(6, "host-a", 7, "host-a");
        try (Arena arena = Arena.ofShared();
             Collector collector = new Collector(arena);
             LinkSubscriber subscriber = collector.subscribe(link).start();
             LinkPublisher publisher = new LinkPublisher(host.aeron(), link, LinkPublisher.Settings.defaults())) {
            MemorySegment bytesSlice = MemorySegment.ofArray(randomBytes(5000, 9)).asSlice(17, 3000);
            float[] floats = new float[1234];
            for (int i = 0; i < floats.length; i++) {
                floats[i] = i * 0.5f - 100f;
            }
            MemorySegment floatSegment = MemorySegment.ofArray(floats);
            publisher.publish(bytesSlice);
            publisher.publish(floatSegment);

            assertEquals(-1, bytesSlice.mismatch(collector.next(5)));
            assertEquals(-1, floatSegment.mismatch(collector.next(5)));
            assertEquals(2, subscriber.stats().framesDelivered());
        }
    }

    @Test
    @Timeout(value = 20, unit = TimeUnit.SECONDS)
    void shouldCarryChunkedFramesOverUdpOnLoopback() throws Exception {
        int port;
        try (DatagramSocket probe = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        Link link = channels.link(8, "host-a", 9, "127.0.0.1", port);
        assertEquals("aeron:udp?endpoint=127.0.0.1:" + port + "|mtu=1408", link.channel());
        try (Arena arena = Arena.ofShared();
             Collector collector = new Collector(arena);
             LinkSubscriber subscriber = collector.subscribe(link).start();
             LinkPublisher publisher = new LinkPublisher(host.aeron(), link,
                     LinkPublisher.Settings.defaults().withMaxChunkBytes(256 * 1024))) {
            List<MemorySegment> frames = List.of(random(arena, 100, 10), random(arena, MIB, 11),
                    random(arena, 3 * MIB + 7, 12));
            for (MemorySegment frame : frames) {
                publisher.publish(frame);
            }
            for (MemorySegment expected : frames) {
                assertEquals(-1, expected.mismatch(collector.next(15)), "UDP frame of " + expected.byteSize());
            }
            assertEquals(3, subscriber.stats().framesDelivered());
            assertTrue(publisher.stats().chunks() > 3);
        }
    }

    /** Copies each delivered frame (valid only during the callback) into memory the test owns. */
    private static final class Collector implements FrameHandler, AutoCloseable {
        private final Arena arena;
        private final BlockingQueue<MemorySegment> frames = new LinkedBlockingQueue<>();
        private final List<String> drops = new ArrayList<>();

        Collector(Arena arena) {
            this.arena = arena;
        }

        LinkSubscriber subscribe(Link link) {
            return new LinkSubscriber(host.aeron(), link, this,
                    (l, sequence, reason) -> { synchronized (drops) { drops.add(sequence + ": " + reason); } },
                    LinkSubscriber.Settings.defaults());
        }

        @Override
        public void onFrame(MemorySegment frame) {
            MemorySegment copy = arena.allocate(Math.max(frame.byteSize(), 1)).asSlice(0, frame.byteSize());
            copy.copyFrom(frame);
            frames.add(copy);
        }

        MemorySegment next(int timeoutSeconds) throws InterruptedException {
            MemorySegment frame = frames.poll(timeoutSeconds, TimeUnit.SECONDS);
            synchronized (drops) {
                assertEquals(List.of(), drops, "no frame may be dropped");
            }
            assertNotNull(frame, "no frame within " + timeoutSeconds + " s");
            return frame;
        }

        @Override
        public void close() {
        }
    }

    private static void offerChunk(ExclusivePublication publication, long sequence, byte[] frame, int index,
                                   int count, int offset, int length) {
        UnsafeBuffer message = new UnsafeBuffer(new byte[ChunkHeader.LENGTH + length]);
        ChunkHeader.encode(message, 0, sequence, frame.length, index, count, length);
        message.putBytes(ChunkHeader.LENGTH, frame, offset, length);
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (publication.offer(message) < 0) {
            if (System.nanoTime() > deadline) {
                fail("raw offer of chunk " + index + " did not go through");
            }
            Thread.onSpinWait();
        }
    }

    private static MemorySegment random(Arena arena, int length, long seed) {
        MemorySegment segment = arena.allocate(length, 64);
        SplittableRandom random = new SplittableRandom(seed);
        long words = length / 8;
        for (long i = 0; i < words; i++) {
            segment.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i, random.nextLong());
        }
        for (long i = words * 8; i < length; i++) {
            segment.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
        }
        return segment;
    }

    private static byte[] randomBytes(int length, long seed) {
        byte[] bytes = new byte[length];
        new SplittableRandom(seed).nextBytes(bytes);
        return bytes;
    }

    private static void awaitCondition(java.util.function.BooleanSupplier condition, long timeoutMillis)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("condition not met within " + timeoutMillis + " ms");
            }
            Thread.sleep(1);
        }
    }

    private static void sleepMillis(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
