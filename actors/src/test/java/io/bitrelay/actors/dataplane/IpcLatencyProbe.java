package io.bitrelay.actors.dataplane;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Latency of one frame over IPC when frames come as a pipeline's steps do: one every few milliseconds, the
 * subscriber idle in between. Each idle strategy in one run: the default backoff (parks up to 1 ms), parks up to
 * 50 µs, and yields without parking. Off by default; run with {@code -Dtest=IpcLatencyProbe -Dbitrelay.probe=true},
 * optionally {@code -Dbitrelay.probe.frameBytes=131072 -Dbitrelay.probe.periodMicros=8000 -Dbitrelay.probe.frames=300}.
 */
@EnabledIfSystemProperty(named = "bitrelay.probe", matches = "true")
class IpcLatencyProbe {

    @TempDir(factory = ShmTempDirFactory.class)
    Path tempDir;

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void measureFrameLatencyPerIdleStrategy() throws Exception {
        int frameBytes = Integer.getInteger("bitrelay.probe.frameBytes", 131_072);
        long periodNanos = Integer.getInteger("bitrelay.probe.periodMicros", 8000) * 1000L;
        int frames = Integer.getInteger("bitrelay.probe.frames", 300);
        IdleSettings backoff = IdleSettings.backoff();
        measure("backoff, max park 1 ms", backoff, frameBytes, periodNanos, frames);
        measure("backoff, max park 50 us", backoff.withMaxParkNanos(50_000), frameBytes, periodNanos, frames);
        measure("yields, no park", new IdleSettings(backoff.maxSpins(), Long.MAX_VALUE, 1, 1), frameBytes, periodNanos, frames);
    }

    private double idleCpu;

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    private void measure(String label, IdleSettings idle, int frameBytes, long periodNanos, int frames) throws Exception {
        LinkChannels channels = new LinkChannels(LinkChannels.Settings.defaults());
        Link link = channels.link(0, "h", 1, "h");
        long[] latencies = new long[frames];
        CountDownLatch all = new CountDownLatch(frames);
        try (MediaDriverHost host = MediaDriverHost.start(MediaDriverHost.Settings.defaults()
                     .withAeronDirectory(tempDir.resolve("aeron-" + label.hashCode())).withMode(MediaDriverHost.DriverMode.EMBEDDED)
                     .withDriverIdle(idle));
             Arena arena = Arena.ofShared();
             LinkSubscriber subscriber = new LinkSubscriber(host.aeron(), link, frame -> {
                 long received = System.nanoTime();
                 int index = (int) frame.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
                 latencies[index] = received - frame.get(ValueLayout.JAVA_LONG_UNALIGNED, 8);
                 all.countDown();
             }, (l, s, r) -> { throw new AssertionError(r); }, LinkSubscriber.Settings.defaults().withIdle(idle)).start();
             LinkPublisher publisher = new LinkPublisher(host.aeron(), link, LinkPublisher.Settings.defaults().withRetryIdle(idle))) {
            MemorySegment frame = arena.allocate(frameBytes, 64);
            long next = System.nanoTime();
            for (int i = 0; i < frames; i++) {
                while (System.nanoTime() < next) {
                    Thread.sleep(0, 100_000);
                }
                frame.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, i);
                frame.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, System.nanoTime());
                publisher.publish(frame);
                next += periodNanos;
            }
            assertTrue(all.await(30, TimeUnit.SECONDS), "every frame arrives");
            Thread.sleep(1000); // past any back-off: what an idle subscriber and driver cost
            long cpuBefore = processCpuNanos();
            long idleStart = System.nanoTime();
            Thread.sleep(3000);
            idleCpu = (double) (processCpuNanos() - cpuBefore) / (System.nanoTime() - idleStart);
        }
        long[] sorted = Arrays.stream(latencies).skip(frames / 10).sorted().toArray(); // the first tenth warms up
        System.out.printf("IPC latency, %s: %d-byte frames every %d us: p50 %.1f us, p90 %.1f us, p99 %.1f us, mean %.1f us;"
                        + " idle, the JVM used %.1f %% of a core%n",
                label, frameBytes, periodNanos / 1000, sorted[sorted.length / 2] / 1e3, sorted[sorted.length * 9 / 10] / 1e3,
                sorted[sorted.length * 99 / 100] / 1e3, Arrays.stream(sorted).average().orElseThrow() / 1e3, idleCpu * 100);
    }
}
