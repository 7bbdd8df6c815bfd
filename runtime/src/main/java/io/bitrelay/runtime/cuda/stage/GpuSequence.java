package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.DeviceBuffer;

/**
 * One sequence's KV cache on the device for the layers of one {@link GpuStage}: per layer a K and a V block of
 * (capacity, hidden) FP16, all in one allocation, token t of head h at row t, columns h·headDim ... (the layout
 * attention.cu reads). {@link #length()} counts the tokens already stored. Made by {@link GpuStage#newSequence()},
 * freed by {@link GpuStage#release} or {@link #close()}.
 */
public final class GpuSequence implements AutoCloseable {
    private final GpuStage owner;
    private final int layers;
    private final int hidden;
    private final int capacity;
    private DeviceBuffer cache; // (layers, 2, capacity, hidden) FP16
    private int length;

    GpuSequence(GpuStage owner, int layers, int hidden, int capacity) {
        this.owner = owner;
        this.layers = layers;
        this.hidden = hidden;
        this.capacity = capacity;
        this.cache = DeviceBuffer.allocate(2L * layers * capacity * hidden * Short.BYTES);
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
        return 2L * layers * capacity * hidden * Short.BYTES;
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

    void advance(int tokens) {
        length += tokens;
    }

    void setLength(int tokens) {
        length = tokens;
    }

    private long blockBytes() {
        return (long) capacity * hidden * Short.BYTES;
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
            owner.forget(this);
            cache.close();
            cache = null;
        }
    }
}
