package io.bitrelay.actors.dataplane;

import io.aeron.Aeron;
import io.aeron.ExclusivePublication;
import io.aeron.Publication;
import org.agrona.CloseHelper;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Sends frames to the next stage over one link. A frame goes out as one or more chunks (see
 * {@link ChunkHeader}), each one Aeron message no larger than the publication's maxMessageLength, written
 * straight from the caller's memory into the log with a two-part {@code offer} (header + frame slice).
 *
 * <p>Every offer result is switched on: BACK_PRESSURED, ADMIN_ACTION and NOT_CONNECTED are retried with
 * the retry idle strategy until {@code publishTimeoutMillis} pass without progress, then a
 * {@link LinkException} names the link and the wait; CLOSED and MAX_POSITION_EXCEEDED fail at once. A
 * frame that fails part-way leaves a partial frame that the subscriber drops; the next frame is whole.
 *
 * <p>One thread publishes on a link (an exclusive publication); stats may be read from any thread.
 */
public final class LinkPublisher implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(LinkPublisher.class);

    /**
     * @param publishTimeoutMillis longest a chunk waits for a subscriber or for room before the publish
     *                             fails (default 10 s)
     * @param maxChunkBytes        most frame bytes per chunk, 0 for as many as one Aeron message holds
     *                             (maxMessageLength − 24 header bytes: 2 MiB at a 16 MiB term) (default 0)
     * @param retryIdle            how to wait between retries (default {@link IdleSettings#backoff()})
     */
    public record Settings(long publishTimeoutMillis, int maxChunkBytes, IdleSettings retryIdle) {

        public Settings {
            if (publishTimeoutMillis < 1) {
                throw new IllegalArgumentException("publish-timeout-millis must be >= 1, got " + publishTimeoutMillis);
            }
            if (maxChunkBytes < 0) {
                throw new IllegalArgumentException("max-chunk-bytes must be >= 0 (0 = largest message), got "
                        + maxChunkBytes);
            }
            if (retryIdle == null) {
                throw new IllegalArgumentException("retry idle settings must be set");
            }
        }

        public static Settings defaults() {
            return new Settings(10_000, 0, IdleSettings.backoff());
        }

        public Settings withPublishTimeoutMillis(long millis) {
            return new Settings(millis, maxChunkBytes, retryIdle);
        }

        public Settings withMaxChunkBytes(int bytes) {
            return new Settings(publishTimeoutMillis, bytes, retryIdle);
        }

        public Settings withRetryIdle(IdleSettings idle) {
            return new Settings(publishTimeoutMillis, maxChunkBytes, idle);
        }
    }

    /**
     * Counters since the publisher was created.
     *
     * @param frames              frames fully published
     * @param chunks              chunks (Aeron messages) published
     * @param bytes               frame bytes published (headers not counted)
     * @param backPressured       offers answered BACK_PRESSURED (the subscriber was a window behind)
     * @param adminActions        offers answered ADMIN_ACTION
     * @param notConnected        offers answered NOT_CONNECTED
     * @param retries             offers repeated after any of the three above
     * @param stalls              chunks that needed at least one retry
     * @param stallNanos          time spent in those retries
     */
    public record Stats(long frames, long chunks, long bytes, long backPressured, long adminActions,
                        long notConnected, long retries, long stalls, long stallNanos) {
    }

    private final Link link;
    private final ExclusivePublication publication;
    private final IdleStrategy retryIdle;
    private final long publishTimeoutNanos;
    private final int chunkPayloadBytes;

    private final UnsafeBuffer chunkHeader = new UnsafeBuffer(new byte[ChunkHeader.LENGTH]);
    private final UnsafeBuffer frameView = new UnsafeBuffer(0, 0); // re-pointed at each caller frame
    private Arena stagingArena; // owns stagingSegment: copies of frames not in native or byte[] memory
    private MemorySegment stagingSegment;
    private long nextFrameSequence;

    // Single writer (the publishing thread), read by metrics: updated with setRelease(getPlain() + n).
    private final AtomicLong frames = new AtomicLong();
    private final AtomicLong chunks = new AtomicLong();
    private final AtomicLong bytes = new AtomicLong();
    private final AtomicLong backPressured = new AtomicLong();
    private final AtomicLong adminActions = new AtomicLong();
    private final AtomicLong notConnected = new AtomicLong();
    private final AtomicLong retries = new AtomicLong();
    private final AtomicLong stalls = new AtomicLong();
    private final AtomicLong stallNanos = new AtomicLong();

    /** Adds the link's publication to the driver (waits for the driver to answer, not for a subscriber). */
    public LinkPublisher(Aeron aeron, Link link, Settings settings) {
        this.link = link;
        this.publication = aeron.addExclusivePublication(link.channel(), link.streamId());
        this.retryIdle = settings.retryIdle().newIdleStrategy();
        this.publishTimeoutNanos = settings.publishTimeoutMillis() * 1_000_000;
        int largestChunk = publication.maxMessageLength() - ChunkHeader.LENGTH;
        this.chunkPayloadBytes = settings.maxChunkBytes() == 0
                ? largestChunk : Math.min(settings.maxChunkBytes(), largestChunk);
        log.debug("publisher for link {}: term {} bytes, max message {} bytes, chunk {} bytes", link,
                publication.termBufferLength(), publication.maxMessageLength(), chunkPayloadBytes);
    }

    /**
     * Publishes the whole segment as one frame and returns its frame sequence. Native and byte[]-backed
     * segments are sent without a copy; others are staged in an off-heap buffer first.
     */
    public long publish(MemorySegment frame) {
        long size = frame.byteSize();
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("frame of " + size + " bytes exceeds the 2 GiB frame limit");
        }
        int length = (int) size;
        if (frame.isNative()) {
            frameView.wrap(frame.address(), length);
        } else if (frame.heapBase().orElse(null) instanceof byte[] array) {
            frameView.wrap(array, (int) frame.address(), length); // a heap segment's address is its array offset
        } else {
            frameView.wrap(stage(frame).address(), length);
        }
        return publish(frameView, 0, length);
    }

    /** Publishes {@code length} bytes of {@code buffer} from {@code offset} as one frame; returns its sequence. */
    public long publish(DirectBuffer buffer, int offset, int length) {
        long sequence = nextFrameSequence++;
        int chunkCount = ChunkHeader.chunkCount(length, chunkPayloadBytes);
        int chunkOffset = 0;
        for (int chunkIndex = 0; chunkIndex < chunkCount; chunkIndex++) {
            int chunkLength = Math.min(chunkPayloadBytes, length - chunkOffset);
            ChunkHeader.encode(chunkHeader, 0, sequence, length, chunkIndex, chunkCount, chunkLength);
            offerChunk(buffer, offset + chunkOffset, chunkLength, sequence, chunkIndex, chunkCount);
            chunkOffset += chunkLength;
        }
        add(frames, 1);
        add(bytes, length);
        return sequence;
    }

    private void offerChunk(DirectBuffer buffer, int offset, int length, long sequence, int chunkIndex,
                            int chunkCount) {
        long result = publication.offer(chunkHeader, 0, ChunkHeader.LENGTH, buffer, offset, length);
        if (result > 0) {
            add(chunks, 1);
            return;
        }
        long startNanos = System.nanoTime();
        retryIdle.reset();
        while (true) {
            switch ((int) result) {
                case (int) Publication.BACK_PRESSURED -> add(backPressured, 1);
                case (int) Publication.ADMIN_ACTION -> add(adminActions, 1);
                case (int) Publication.NOT_CONNECTED -> add(notConnected, 1);
                case (int) Publication.CLOSED -> throw new LinkException(LinkException.Reason.CLOSED, link,
                        "publication of link " + link + " is closed (frame " + sequence + " not sent)");
                case (int) Publication.MAX_POSITION_EXCEEDED -> throw new LinkException(
                        LinkException.Reason.MAX_POSITION_EXCEEDED, link, "link " + link
                        + " reached the largest position its term length allows; recreate the publication"
                        + " (frame " + sequence + " not sent)");
                default -> throw new IllegalStateException("unexpected offer result " + result + " on link " + link);
            }
            long waitedNanos = System.nanoTime() - startNanos;
            if (waitedNanos >= publishTimeoutNanos) {
                add(stalls, 1);
                add(stallNanos, waitedNanos);
                throw timedOut(result, sequence, chunkIndex, chunkCount);
            }
            add(retries, 1);
            retryIdle.idle();
            result = publication.offer(chunkHeader, 0, ChunkHeader.LENGTH, buffer, offset, length);
            if (result > 0) {
                add(chunks, 1);
                add(stalls, 1);
                add(stallNanos, System.nanoTime() - startNanos);
                return;
            }
        }
    }

    private LinkException timedOut(long result, long sequence, int chunkIndex, int chunkCount) {
        String waited = LinkException.describeNanos(publishTimeoutNanos);
        String unsent = " (frame " + sequence + ", chunk " + chunkIndex + " of " + chunkCount + " not sent)";
        if (result == Publication.NOT_CONNECTED) {
            return new LinkException(LinkException.Reason.NOT_CONNECTED, link, chunkIndex == 0
                    ? "no subscriber for link " + link + " after " + waited
                    : "subscriber of link " + link + " went away and did not come back within " + waited + unsent);
        }
        if (result == Publication.BACK_PRESSURED) {
            return new LinkException(LinkException.Reason.BACK_PRESSURED, link, "link " + link
                    + " back-pressured for " + waited + ": the subscriber is not keeping up" + unsent);
        }
        return new LinkException(LinkException.Reason.ADMIN_ACTION, link, "link " + link
                + " still asked for admin action after " + waited + unsent);
    }

    private MemorySegment stage(MemorySegment frame) {
        if (stagingSegment == null || stagingSegment.byteSize() < frame.byteSize()) {
            if (stagingArena != null) {
                stagingArena.close();
            }
            stagingArena = Arena.ofShared();
            stagingSegment = stagingArena.allocate(Math.max(frame.byteSize(), 4096), 64);
        }
        MemorySegment.copy(frame, 0, stagingSegment, 0, frame.byteSize());
        return stagingSegment;
    }

    private static void add(AtomicLong counter, long delta) {
        counter.setRelease(counter.getPlain() + delta);
    }

    public Link link() {
        return link;
    }

    /** True while at least one subscriber is connected to the link. */
    public boolean isConnected() {
        return publication.isConnected();
    }

    /** Frame bytes per chunk: frames longer than this are split. */
    public int chunkPayloadBytes() {
        return chunkPayloadBytes;
    }

    public Stats stats() {
        return new Stats(frames.get(), chunks.get(), bytes.get(), backPressured.get(), adminActions.get(),
                notConnected.get(), retries.get(), stalls.get(), stallNanos.get());
    }

    @Override
    public void close() {
        CloseHelper.close(publication);
        if (stagingArena != null) {
            stagingArena.close();
            stagingArena = null;
            stagingSegment = null;
        }
    }
}
