package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.DeviceBuffer;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * Released KV caches of one {@link GpuStage}, kept for the next sequence of the same byte size (a caching allocator,
 * as PyTorch's). On the serving path a sequence is admitted or finished every few steps: cuMemAlloc of a cache
 * (tens of MB) costs up to milliseconds and cuMemFree waits for the whole device, so each of them stalled the step
 * queue behind it. Reuse is safe without a wait: every kernel that reads or writes a cache runs on the stage's one
 * compute stream, so a new owner's first write is queued after the old owner's last read.
 *
 * <p>Sizes that stop coming back stay cached until an allocation finds the device full; then the pool frees
 * everything it holds (one wait for the device) and tries once more. Used from the stage's compute thread only.
 */
final class KvCachePool implements AutoCloseable {
    private final Map<Long, ArrayDeque<DeviceBuffer>> free = new HashMap<>();
    private long cachedBytes;
    private long reused;
    private long allocated;

    /** A cache of {@code bytes} (contents undefined): a released one of that size, else a new allocation. */
    DeviceBuffer take(long bytes) {
        ArrayDeque<DeviceBuffer> sameSize = free.get(bytes);
        if (sameSize != null && !sameSize.isEmpty()) {
            cachedBytes -= bytes;
            reused++;
            return sameSize.pop();
        }
        allocated++;
        try {
            return DeviceBuffer.allocate(bytes);
        } catch (IllegalStateException full) {
            if (cachedBytes == 0) {
                throw full;
            }
            release();
            return DeviceBuffer.allocate(bytes);
        }
    }

    /** Keeps {@code buffer} for a later {@link #take} of its size. */
    void give(DeviceBuffer buffer) {
        free.computeIfAbsent(buffer.byteSize(), size -> new ArrayDeque<>()).push(buffer);
        cachedBytes += buffer.byteSize();
    }

    /** Device bytes held for reuse. */
    long cachedBytes() {
        return cachedBytes;
    }

    /** Takes served from the pool / by a new allocation, since the stage started. */
    long reused() {
        return reused;
    }

    long allocated() {
        return allocated;
    }

    /** Frees every cached buffer (the caller's context current). */
    void release() {
        free.values().forEach(buffers -> buffers.forEach(DeviceBuffer::close));
        free.clear();
        cachedBytes = 0;
    }

    @Override
    public void close() {
        release();
    }
}
