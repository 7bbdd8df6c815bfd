package io.bitrelay.actors.dataplane;

import io.aeron.Aeron;
import io.aeron.Subscription;
import org.agrona.CloseHelper;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Receives frames from the previous stage over one link: an Agrona {@link Agent} whose duty cycle polls the
 * link's subscription and feeds a {@link FrameReassembler}, which hands each whole frame to the
 * {@link FrameHandler} and each inconsistent one to the {@link DroppedFrameListener}. No allocation per
 * fragment or frame; the reassembly buffer grows (off-heap) to the largest frame seen.
 *
 * <p>Run it with {@link #start()} (its own {@link AgentRunner} thread with the configured idle strategy), or
 * drive {@link #doWork()} from an existing duty cycle, e.g. a composite agent, from one thread only.
 */
public final class LinkSubscriber implements Agent, AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(LinkSubscriber.class);

    /**
     * @param idle                   how the agent thread waits when no fragments arrive (default
     *                               {@link IdleSettings#backoff()}: never busy-spins for long)
     * @param fragmentLimit          most fragments handled per duty cycle (default 256)
     * @param initialReassemblyBytes first size of the reassembly buffer (default 1 MiB; it doubles as needed)
     * @param maxFrameBytes          frames announced larger than this are dropped unread, so a corrupt header
     *                               cannot allocate without bound (default 1 GiB; a 175B prefill is ~50 MB)
     */
    public record Settings(IdleSettings idle, int fragmentLimit, int initialReassemblyBytes, int maxFrameBytes) {

        public Settings {
            if (idle == null) {
                throw new IllegalArgumentException("subscriber idle settings must be set");
            }
            if (fragmentLimit < 1) {
                throw new IllegalArgumentException("fragment-limit must be >= 1, got " + fragmentLimit);
            }
            if (initialReassemblyBytes < 0) {
                throw new IllegalArgumentException("initial-reassembly-bytes must be >= 0, got "
                        + initialReassemblyBytes);
            }
            if (maxFrameBytes < 1) {
                throw new IllegalArgumentException("max-frame-bytes must be >= 1, got " + maxFrameBytes);
            }
        }

        public static Settings defaults() {
            return new Settings(IdleSettings.backoff(), 256, 1 << 20, 1 << 30);
        }

        public Settings withIdle(IdleSettings newIdle) {
            return new Settings(newIdle, fragmentLimit, initialReassemblyBytes, maxFrameBytes);
        }

        public Settings withFragmentLimit(int limit) {
            return new Settings(idle, limit, initialReassemblyBytes, maxFrameBytes);
        }

        public Settings withMaxFrameBytes(int bytes) {
            return new Settings(idle, fragmentLimit, initialReassemblyBytes, bytes);
        }
    }

    /**
     * Counters since the subscriber was created.
     *
     * @param framesDelivered         frames handed to the handler
     * @param bytesDelivered          their bytes
     * @param chunksReceived          chunks accepted into a frame
     * @param framesDropped           frames (or stray chunks) given up on; each was reported to the listener
     * @param handlerFailures         frames whose handler threw (logged, then the next frame is handled)
     * @param reassemblyCapacityBytes off-heap bytes held for reassembly
     */
    public record Stats(long framesDelivered, long bytesDelivered, long chunksReceived, long framesDropped,
                        long handlerFailures, long reassemblyCapacityBytes) {
    }

    private final Link link;
    private final Settings settings;
    private final Subscription subscription;
    private final FrameReassembler reassembler;
    private final int fragmentLimit;
    private final String roleName;
    private AgentRunner runner;
    private boolean closed;

    /** Adds the link's subscription (for UDP this binds the endpoint); nothing is polled until started. */
    public LinkSubscriber(Aeron aeron, Link link, FrameHandler frameHandler, DroppedFrameListener droppedFrameListener,
                          Settings settings) {
        this.link = link;
        this.settings = settings;
        this.fragmentLimit = settings.fragmentLimit();
        this.roleName = "link-subscriber-" + link.sourceStage() + "-to-" + link.destinationStage();
        this.reassembler = new FrameReassembler(link, frameHandler, droppedFrameListener,
                e -> log.error("link {}: frame handler failed", link, e),
                settings.initialReassemblyBytes(), settings.maxFrameBytes());
        // The driver's view of the publisher, logged because it is the data plane's own failure signal: it fires
        // once the driver drops a dead publisher (client liveness or image liveness timeout, 10 s by default), well
        // after the cluster's failure detector, so nothing acts on it (docs/failover.md, "Which signal fires").
        this.subscription = aeron.addSubscription(link.channel(), link.streamId(),
                image -> log.info("link {}: publisher session {} from {} connected", link, image.sessionId(), image.sourceIdentity()),
                image -> log.info("link {}: publisher session {} from {} unavailable (image gone)", link, image.sessionId(),
                        image.sourceIdentity()));
    }

    /** Starts the duty cycle on a daemon thread named after {@link #roleName()}; returns this. */
    public synchronized LinkSubscriber start() {
        if (runner != null || closed) {
            throw new IllegalStateException("subscriber of link " + link + " already started or closed");
        }
        runner = new AgentRunner(settings.idle().newIdleStrategy(),
                e -> log.error("link {}: subscriber duty cycle failed", link, e), null, this);
        AgentRunner.startOnThread(runner, task -> {
            Thread thread = new Thread(task);
            thread.setDaemon(true);
            return thread;
        });
        return this;
    }

    @Override
    public int doWork() {
        int fragments = subscription.poll(reassembler, fragmentLimit);
        if (fragments == 0 && reassembler.frameInProgress()
                && subscription.imageBySessionId(reassembler.sessionId()) == null) {
            reassembler.abandonFrame("publisher session " + reassembler.sessionId() + " went away mid-frame");
            return 1;
        }
        return fragments;
    }

    @Override
    public String roleName() {
        return roleName;
    }

    /** Called on the agent thread when its runner closes, or by {@link #close()} if never started. */
    @Override
    public void onClose() {
        if (closed) {
            return;
        }
        closed = true;
        CloseHelper.quietClose(subscription);
        reassembler.close();
    }

    public Link link() {
        return link;
    }

    /** True while a publisher is connected. */
    public boolean isConnected() {
        return subscription.isConnected();
    }

    public Stats stats() {
        return reassembler.stats();
    }

    /** Stops the agent thread (if started), closes the subscription and frees the reassembly buffer. */
    @Override
    public synchronized void close() {
        if (runner != null) {
            runner.close();
        } else {
            onClose();
        }
    }
}
