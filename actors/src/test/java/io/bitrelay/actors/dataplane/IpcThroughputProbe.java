package io.bitrelay.actors.dataplane;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Throughput of 1 MiB frames over IPC in one JVM (publisher thread → embedded driver → subscriber agent that
 * reads one long per frame). Off by default; run with
 * {@code -Dtest=IpcThroughputProbe -Dbitrelay.probe=true}, optionally with
 * {@code -Dbitrelay.probe.ipcMtu=1408} (the driver's IPC MTU) and {@code -Dbitrelay.probe.frameBytes=1048576}.
 */
@EnabledIfSystemProperty(named = "bitrelay.probe", matches = "true")
class IpcThroughputProbe {

    @TempDir(factory = ShmTempDirFactory.class)
    Path tempDir;

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void measureIpcFrameThroughput() throws Exception {
        int frameBytes = Integer.getInteger("bitrelay.probe.frameBytes", 1 << 20);
        int ipcMtu = Integer.getInteger("bitrelay.probe.ipcMtu", LinkChannels.MAX_MTU_BYTES);
        long warmupNanos = 1_000_000_000L;
        long measureNanos = 3_000_000_000L;
        LinkChannels channels = new LinkChannels(LinkChannels.Settings.defaults());
        Link link = channels.link(0, "h", 1, "h");
        AtomicLong received = new AtomicLong();
        try (MediaDriverHost host = MediaDriverHost.start(MediaDriverHost.Settings.defaults()
                     .withAeronDirectory(tempDir.resolve("aeron")).withMode(MediaDriverHost.DriverMode.EMBEDDED)
                     .withIpcMtuBytes(ipcMtu));
             Arena arena = Arena.ofShared();
             LinkSubscriber subscriber = new LinkSubscriber(host.aeron(), link,
                     frame -> received.setRelease(frame.get(ValueLayout.JAVA_LONG_UNALIGNED, 0) + 1),
                     (l, s, r) -> { throw new AssertionError(r); }, LinkSubscriber.Settings.defaults()).start();
             LinkPublisher publisher = new LinkPublisher(host.aeron(), link, LinkPublisher.Settings.defaults())) {
            MemorySegment frame = arena.allocate(frameBytes, 64);
            long sent = 0;
            long start = System.nanoTime();
            long measureStart = 0;
            long measureFrom = 0;
            while (true) {
                long now = System.nanoTime();
                if (measureStart == 0 && now - start > warmupNanos) {
                    measureStart = now;
                    measureFrom = received.get();
                }
                if (measureStart != 0 && now - measureStart > measureNanos) {
                    break;
                }
                frame.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, sent++);
                publisher.publish(frame);
            }
            long framesInWindow = received.get() - measureFrom;
            double seconds = (System.nanoTime() - measureStart) / 1e9;
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (received.get() < sent && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(sent, received.get());
            System.out.printf("IPC probe: %d-byte frames, IPC MTU %d: %.0f frames/s, %.0f MiB/s (%d frames in %.1f s),"
                            + " publisher %s%n", frameBytes, ipcMtu,
                    framesInWindow / seconds, framesInWindow * (double) frameBytes / (1 << 20) / seconds,
                    framesInWindow, seconds, publisher.stats());
        }
    }
}
