package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.wire.FrameException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static io.bitrelay.runtime.wire.WireTestData.hiddenStates;
import static io.bitrelay.runtime.wire.WireTestData.segment;
import static io.bitrelay.runtime.wire.WireTestData.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class LinkStatsTest {

    @Test
    void shouldCountWholeFramesAndTheirFp16Equivalent() {
        LinkCodec int8 = LinkCodecs.forName("int8");
        BatchLayout layout = LinkFrameTest.layoutFor(3);
        LinkFrameWriter writer = new LinkFrameWriter().wrap(zeros(4096));
        writer.encode(int8, layout, segment(hiddenStates(3, 100, 1)), 3, 100);
        LinkStats sent = new LinkStats();
        sent.recordFrame(writer);
        LinkStats received = new LinkStats();
        received.recordFrame(new LinkFrameReader().wrap(writer.frame()));

        long int8Frame = 48 + layout.encodedBytes() + 3 * 2 + 300 + 4;
        long fp16Frame = 48 + layout.encodedBytes() + 600 + 4;
        for (LinkStats stats : List.of(sent, received)) {
            LinkStats.Snapshot s = stats.snapshot();
            assertEquals(1, s.frames());
            assertEquals(3, s.tokens());
            assertEquals(300, s.payloadBytes());
            assertEquals(int8Frame, s.wireBytes());
            assertEquals(fp16Frame, s.fp16WireBytes());
            assertEquals((double) fp16Frame / int8Frame, s.bandwidthRatio(), 1e-12);
            assertEquals(0, s.rejectedTotal());
        }
    }

    @Test
    void shouldCountRejectedFramesByReason() {
        LinkStats stats = new LinkStats();
        LinkFrameReader reader = new LinkFrameReader();
        for (MemorySegment bad : new MemorySegment[] {zeros(10), zeros(100), zeros(100)}) {
            FrameException e = assertThrows(FrameException.class, () -> reader.wrap(bad.asSlice(0, 10)));
            stats.recordRejected(e.reason());
        }
        stats.recordRejected(Reason.BAD_CRC);
        LinkStats.Snapshot s = stats.snapshot();
        assertEquals(3, s.rejected().get(Reason.TRUNCATED));
        assertEquals(1, s.rejected().get(Reason.BAD_CRC));
        assertEquals(0, s.rejected().get(Reason.BAD_MAGIC));
        assertEquals(4, s.rejectedTotal());
        assertEquals(0, s.frames());
        assertTrue(Double.isNaN(s.bandwidthRatio()));
    }

    @Test
    void shouldNotLoseCountsUnderConcurrentRecording() throws InterruptedException {
        LinkStats stats = new LinkStats();
        int threads = 4;
        int perThread = 20_000;
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            workers.add(Thread.ofPlatform().start(() -> {
                for (int i = 0; i < perThread; i++) {
                    stats.recordFrame(2, 768, 24, 1536, 1648);
                    stats.recordRejected(Reason.BAD_CRC);
                }
            }));
        }
        for (Thread worker : workers) {
            worker.join();
        }
        LinkStats.Snapshot s = stats.snapshot();
        long frames = (long) threads * perThread;
        assertEquals(frames, s.frames());
        assertEquals(2 * frames, s.tokens());
        assertEquals(1648 * frames, s.wireBytes());
        assertEquals((48 + 24 + 2 * 768 * 2 + 4) * frames, s.fp16WireBytes());
        assertEquals(frames, s.rejected().get(Reason.BAD_CRC));
    }
}
