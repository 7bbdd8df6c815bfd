package io.bitrelay.actors.worker;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Buffers for inbound frames on their way from the data plane's thread (which must go back to polling) to the
 * stage's compute thread, recycled rather than allocated per frame: a shared arena per frame cost a JVM-wide
 * handshake at every close. A buffer too small for a frame is dropped for a larger one (sizes double), so the pool
 * holds a few buffers of the largest frame seen, as many as frames wait at once.
 */
final class FrameCopies implements AutoCloseable {
    private final Arena arena = Arena.ofShared();
    private final ConcurrentLinkedQueue<MemorySegment> free = new ConcurrentLinkedQueue<>();
    /** Each buffer by its address: a copy handed out is a slice of its frame's length, recycled as the whole buffer. */
    private final Map<Long, MemorySegment> buffers = new ConcurrentHashMap<>();

    /** A copy of {@code frame}, as a slice of its length; hand the slice back with {@link #recycle}. Data plane thread. */
    MemorySegment copy(MemorySegment frame) {
        long bytes = frame.byteSize();
        MemorySegment buffer = free.poll();
        if (buffer == null || buffer.byteSize() < bytes) {
            long size = Long.highestOneBit(Math.max(bytes, 4096) - 1) << 1;
            if (buffer != null) {
                buffers.remove(buffer.address());
            }
            buffer = arena.allocate(size, 8);
            buffers.put(buffer.address(), buffer);
        }
        MemorySegment copy = buffer.asSlice(0, bytes);
        MemorySegment.copy(frame, 0, copy, 0, bytes);
        return copy;
    }

    /** The frame's buffer is free again (its step is over). Compute thread. */
    void recycle(MemorySegment copy) {
        MemorySegment buffer = buffers.get(copy.address());
        if (buffer == null) {
            throw new IllegalArgumentException("not a frame copy of this pool: " + copy);
        }
        free.add(buffer);
    }

    @Override
    public void close() {
        free.clear();
        buffers.clear();
        arena.close();
    }
}
