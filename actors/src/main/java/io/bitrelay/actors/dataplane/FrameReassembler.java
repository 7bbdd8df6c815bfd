package io.bitrelay.actors.dataplane;

import io.aeron.logbuffer.FragmentHandler;
import io.aeron.logbuffer.FrameDescriptor;
import io.aeron.logbuffer.Header;
import org.agrona.DirectBuffer;
import org.agrona.ErrorHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Rebuilds frames from the fragments of one link and hands each whole frame to the {@link FrameHandler}.
 *
 * <p>Two levels of splitting are undone here in one pass, without an intermediate copy: Aeron cuts each
 * message (chunk) into MTU-sized fragments, marked by the BEGIN/END flags of its data header, and the
 * publisher cuts each frame into chunks, each starting with a {@link ChunkHeader}. Every fragment's bytes are
 * copied once, straight to their place in the reassembly buffer.
 *
 * <p>Aeron delivers a session's fragments reliably and in order, so an inconsistent sequence means a
 * publisher failed or restarted part-way through a frame: chunk 0 of a new frame, or a chunk of another
 * frame, arriving while chunk k of the current one is expected. Such a frame is dropped whole, with the
 * reason logged and given to the {@link DroppedFrameListener}, and the chunk that revealed it may start
 * the next frame. One publisher session per link is expected; fragments of a second session mid-frame
 * drop the frame.
 *
 * <p>Not thread-safe: driven by the subscriber's agent thread only. The reassembly buffer is off-heap,
 * owned here, grows to the largest frame seen (doubling, up to {@code maxFrameBytes}) and is freed by
 * {@link #close()}.
 */
final class FrameReassembler implements FragmentHandler, AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(FrameReassembler.class);

    private enum State {
        /** Between frames: the next fragment should begin chunk 0 of a frame. */
        AWAITING_FRAME,
        /** Between chunks of a frame: the next fragment should begin chunk {@code nextChunkIndex}. */
        AWAITING_CHUNK,
        /** Inside a chunk: the next fragments continue it until its END flag. */
        IN_CHUNK,
        /** After a rejected chunk: its remaining fragments are skipped up to the next BEGIN. */
        DISCARDING
    }

    private final Link link;
    private final FrameHandler frameHandler;
    private final DroppedFrameListener droppedFrameListener;
    private final ErrorHandler handlerErrorHandler;
    private final int initialCapacityBytes;
    private final int maxFrameBytes;

    private Arena reassemblyArena; // owns reassembly; replaced when a larger frame arrives
    private MemorySegment reassembly; // (capacity bytes) the frame being rebuilt, from offset 0
    private final UnsafeBuffer reassemblyWriter = new UnsafeBuffer(0, 0); // over reassembly, for copies from Aeron
    private MemorySegment deliveredView; // read-only slice [0, frameLength), reused while frames keep their size

    private State state = State.AWAITING_FRAME;
    private int sessionId;
    private long frameSequence;
    private int frameLength;
    private int chunkCount;
    private int chunkIndex;
    private int receivedBytes;
    private int chunkRemainingBytes;
    private long lastDroppedSequence = Long.MIN_VALUE; // later chunks of a dropped frame are skipped silently

    // Single writer (the agent thread), read by metrics.
    private final AtomicLong framesDelivered = new AtomicLong();
    private final AtomicLong bytesDelivered = new AtomicLong();
    private final AtomicLong chunksReceived = new AtomicLong();
    private final AtomicLong framesDropped = new AtomicLong();
    private final AtomicLong handlerFailures = new AtomicLong();

    FrameReassembler(Link link, FrameHandler frameHandler, DroppedFrameListener droppedFrameListener,
                     ErrorHandler handlerErrorHandler, int initialCapacityBytes, int maxFrameBytes) {
        this.link = link;
        this.frameHandler = frameHandler;
        this.droppedFrameListener = droppedFrameListener;
        this.handlerErrorHandler = handlerErrorHandler;
        this.initialCapacityBytes = initialCapacityBytes;
        this.maxFrameBytes = maxFrameBytes;
    }

    @Override
    public void onFragment(DirectBuffer buffer, int offset, int length, Header header) {
        onFragment(buffer, offset, length, header.flags(), header.sessionId());
    }

    void onFragment(DirectBuffer buffer, int offset, int length, byte flags, int session) {
        if ((flags & FrameDescriptor.BEGIN_FRAG_FLAG) != 0) {
            onChunkStart(buffer, offset, length, session);
        } else {
            onChunkContinuation(buffer, offset, length, session);
        }
        if ((flags & FrameDescriptor.END_FRAG_FLAG) != 0 && state == State.IN_CHUNK) {
            onChunkEnd();
        }
    }

    private void onChunkStart(DirectBuffer buffer, int offset, int length, int session) {
        if (state == State.IN_CHUNK) {
            dropFrame("chunk " + chunkIndex + " of " + chunkCount + " was cut short by a new message"
                    + (session != sessionId ? " from publisher session " + session : ""));
        }
        if (length < ChunkHeader.LENGTH) {
            rejectChunk(-1, "message of " + length + " bytes is shorter than the "
                    + ChunkHeader.LENGTH + "-byte chunk header");
            return;
        }
        long sequence = ChunkHeader.frameSequence(buffer, offset);
        int totalBytes = ChunkHeader.frameLength(buffer, offset);
        int index = ChunkHeader.chunkIndex(buffer, offset);
        int count = ChunkHeader.chunkCount(buffer, offset);
        int chunkBytes = ChunkHeader.chunkLength(buffer, offset);
        int payloadBytes = length - ChunkHeader.LENGTH;

        if (count < 1 || index < 0 || index >= count || totalBytes < 0 || chunkBytes < 0
                || chunkBytes > totalBytes || payloadBytes > chunkBytes) {
            rejectChunk(sequence, "invalid chunk header: chunk " + index + " of " + count + ", "
                    + chunkBytes + " of " + totalBytes + " frame bytes, " + payloadBytes + " bytes in first fragment");
            return;
        }
        if (totalBytes > maxFrameBytes) {
            rejectChunk(sequence, "frame of " + totalBytes + " bytes exceeds max-frame-bytes " + maxFrameBytes);
            return;
        }
        if (state == State.AWAITING_CHUNK && !continuesFrame(sequence, totalBytes, index, count, session)) {
            dropFrame(describeMismatch(sequence, totalBytes, index, count, session));
        }
        if (state != State.AWAITING_CHUNK) {
            if (index != 0) {
                rejectChunk(sequence, "chunk " + index + " of " + count + " arrived without chunk 0");
                return;
            }
            startFrame(sequence, totalBytes, count, session);
        }
        if (chunkBytes > frameLength - receivedBytes) {
            dropFrame("chunk " + index + " of " + count + " (" + chunkBytes + " bytes) overruns the frame length "
                    + frameLength + " at byte " + receivedBytes);
            return;
        }
        chunkRemainingBytes = chunkBytes;
        state = State.IN_CHUNK;
        add(chunksReceived, 1);
        copyIntoFrame(buffer, offset + ChunkHeader.LENGTH, payloadBytes);
    }

    private void onChunkContinuation(DirectBuffer buffer, int offset, int length, int session) {
        switch (state) {
            case IN_CHUNK -> {
                if (session != sessionId) {
                    dropFrame("a fragment of publisher session " + session + " interleaved into chunk "
                            + chunkIndex + " of session " + sessionId);
                } else if (length > chunkRemainingBytes) {
                    dropFrame("chunk " + chunkIndex + " of " + chunkCount + " carries more bytes than its header says");
                } else {
                    copyIntoFrame(buffer, offset, length);
                }
            }
            case DISCARDING -> {
                // the rest of a rejected message
            }
            case AWAITING_CHUNK -> dropFrame("a message continuation arrived before chunk " + chunkIndex
                    + " of " + chunkCount + " began");
            case AWAITING_FRAME -> rejectChunk(-1, "a message continuation arrived without its start");
        }
    }

    private void onChunkEnd() {
        if (chunkRemainingBytes != 0) {
            dropFrame("chunk " + chunkIndex + " of " + chunkCount + " ended " + chunkRemainingBytes
                    + " bytes short of its length");
            return;
        }
        chunkIndex++;
        if (chunkIndex < chunkCount) {
            state = State.AWAITING_CHUNK;
            return;
        }
        if (receivedBytes != frameLength) {
            dropFrame("last chunk ended the frame at " + receivedBytes + " of " + frameLength + " bytes");
            return;
        }
        state = State.AWAITING_FRAME;
        deliver();
    }

    private boolean continuesFrame(long sequence, int totalBytes, int index, int count, int session) {
        return sequence == frameSequence && index == chunkIndex && totalBytes == frameLength && count == chunkCount
                && session == sessionId;
    }

    private String describeMismatch(long sequence, int totalBytes, int index, int count, int session) {
        if (session != sessionId) {
            return "chunk " + index + " of frame " + sequence + " from publisher session " + session
                    + " interleaved while chunk " + chunkIndex + " of " + chunkCount + " was expected";
        }
        if (sequence != frameSequence) {
            return "cut short after " + chunkIndex + " of " + chunkCount + " chunks: chunk " + index
                    + " of frame " + sequence + " came next";
        }
        if (index > chunkIndex) {
            return index == chunkIndex + 1
                    ? "missing chunk " + chunkIndex + " of " + chunkCount
                    : "missing chunks " + chunkIndex + ".." + (index - 1) + " of " + chunkCount;
        }
        if (index != chunkIndex) {
            return "chunk " + index + " arrived again while chunk " + chunkIndex + " of " + chunkCount
                    + " was expected";
        }
        return "chunk " + index + " says the frame has " + totalBytes + " bytes in " + count
                + " chunks, chunk 0 said " + frameLength + " bytes in " + chunkCount;
    }

    private void startFrame(long sequence, int totalBytes, int count, int session) {
        ensureCapacity(totalBytes);
        frameSequence = sequence;
        frameLength = totalBytes;
        chunkCount = count;
        chunkIndex = 0;
        receivedBytes = 0;
        sessionId = session;
        state = State.AWAITING_CHUNK;
    }

    private void copyIntoFrame(DirectBuffer buffer, int offset, int length) {
        reassemblyWriter.putBytes(receivedBytes, buffer, offset, length);
        receivedBytes += length;
        chunkRemainingBytes -= length;
    }

    private void deliver() {
        if (deliveredView == null || deliveredView.byteSize() != frameLength) {
            deliveredView = reassembly.asSlice(0, frameLength).asReadOnly();
        }
        add(framesDelivered, 1);
        add(bytesDelivered, frameLength);
        try {
            frameHandler.onFrame(deliveredView);
        } catch (Exception e) {
            add(handlerFailures, 1);
            handlerErrorHandler.onError(new IllegalStateException(
                    "frame handler failed on frame " + frameSequence + " of link " + link, e));
        }
    }

    /** Drops the frame in progress, e.g. because its publisher went away. */
    void abandonFrame(String reason) {
        if (state == State.AWAITING_CHUNK || state == State.IN_CHUNK) {
            dropFrame(reason);
        }
    }

    boolean frameInProgress() {
        return state == State.AWAITING_CHUNK || state == State.IN_CHUNK;
    }

    int sessionId() {
        return sessionId;
    }

    private void dropFrame(String reason) {
        state = State.DISCARDING;
        lastDroppedSequence = frameSequence;
        add(framesDropped, 1);
        report(frameSequence, reason + " (" + receivedBytes + " of " + frameLength + " bytes received)");
    }

    /** Skips a chunk that starts no frame; reports once per frame sequence. */
    private void rejectChunk(long sequence, String reason) {
        if (frameInProgress()) {
            dropFrame("its next chunk was rejected: " + reason);
            return;
        }
        state = State.DISCARDING;
        if (sequence == -1 || sequence != lastDroppedSequence) {
            lastDroppedSequence = sequence;
            add(framesDropped, 1);
            report(sequence, reason);
        }
    }

    private void report(long sequence, String reason) {
        log.warn("dropped frame {} on link {}: {}", sequence, link, reason);
        try {
            droppedFrameListener.onFrameDropped(link, sequence, reason);
        } catch (RuntimeException e) {
            log.error("dropped-frame listener failed on link {}", link, e);
        }
    }

    private void ensureCapacity(int frameBytes) {
        if (reassembly != null && reassembly.byteSize() >= frameBytes) {
            return;
        }
        long current = reassembly == null ? 0 : reassembly.byteSize();
        long capacity = Math.max(Math.max(frameBytes, initialCapacityBytes), Math.min(2 * current, maxFrameBytes));
        freeBuffer();
        reassemblyArena = Arena.ofShared();
        reassembly = reassemblyArena.allocate(capacity, 64);
        reassemblyWriter.wrap(reassembly.address(), (int) capacity);
        log.debug("link {}: reassembly buffer grown to {} bytes", link, capacity);
    }

    private void freeBuffer() {
        if (reassemblyArena != null) {
            reassemblyArena.close();
        }
        reassemblyArena = null;
        reassembly = null;
        deliveredView = null;
        reassemblyWriter.wrap(0, 0);
    }

    long reassemblyCapacityBytes() {
        MemorySegment current = reassembly;
        return current == null ? 0 : current.byteSize();
    }

    LinkSubscriber.Stats stats() {
        return new LinkSubscriber.Stats(framesDelivered.get(), bytesDelivered.get(), chunksReceived.get(),
                framesDropped.get(), handlerFailures.get(), reassemblyCapacityBytes());
    }

    private static void add(AtomicLong counter, long delta) {
        counter.setRelease(counter.getPlain() + delta);
    }

    @Override
    public void close() {
        freeBuffer();
    }
}
