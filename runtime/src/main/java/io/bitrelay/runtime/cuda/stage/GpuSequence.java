package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.kernels.KvCacheFormat;

/**
 * One sequence's KV cache on the device for the layers of one {@link GpuStage}: per layer a K and a V block, all in
 * one allocation — (capacity, hidden) FP16, or for {@link KvCacheFormat#INT8} (capacity, hidden) codes followed by
 * (capacity, heads) {scale, minimum} FP32 — token t of head h at row t, columns h·headDim ... (the layout attention.cu
 * reads). {@link #length()} counts the tokens already stored. Made by {@link GpuStage#newSequence()},
 * freed by {@link GpuStage#release} or {@link #close()}.
 */
public final class GpuSequence implements AutoCloseable {
    private final GpuStage owner;
    private final int layers;
    private final int hidden;
    private final int capacity;
    private final long blockBytes;
    private DeviceBuffer cache; // (layers, 2) blocks of blockBytes
    private int length;

    GpuSequence(GpuStage owner, KvCachePool pool, KvCacheFormat format, int layers, int hidden, int heads, int capacity) {
        this.owner = owner;
        this.layers = layers;
        this.hidden = hidden;
        this.capacity = capacity;
        this.blockBytes = format.blockBytes(capacity, hidden, heads);
        this.cache = pool.take(2L * layers * blockBytes);
    }

    /** Tokens in the cache (the next token's position). */
    public int length() {
        return length;
    }

    /** Most tokens this cache holds. */
    public int capacity() {
        return capacity;
    }

    public boolean isOpen() {
        return cache != null;
    }

    /** Device bytes of the cache. */
    public long bytes() {
        return 2L * layers * blockBytes;
    }

    /** Where a K or V block's INT8 params start ({@link KvCacheFormat#paramsOffset}). */
    long paramsOffset() {
        return KvCacheFormat.paramsOffset(capacity, hidden);
    }

    /** Byte size of one layer's K (or V) block. */
    long blockBytes() {
        return blockBytes;
    }

    GpuStage owner() {
        return owner;
    }

    long keys(int localLayer) {
        return live().address() + (2L * localLayer) * blockBytes();
    }

    long values(int localLayer) {
        return live().address() + (2L * localLayer + 1) * blockBytes();
    }

    long base() {
        return live().address();
    }

    DeviceBuffer buffer() {
        return live();
    }

    int layers() {
        return layers;
    }

    void advance(int tokens) {
        length += tokens;
    }

    void setLength(int tokens) {
        length = tokens;
    }

    private DeviceBuffer live() {
        if (cache == null) {
            throw new IllegalStateException("GPU sequence is released");
        }
        return cache;
    }

    @Override
    public void close() {
        if (cache != null) {
            owner.forget(this, cache);
            cache = null;
        }
    }
}
