package io.bitrelay.runtime.model.opt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Keys and values of one sequence for the layers one stage owns, FP32, each layer (capacity, hidden).
 * Capacity doubles on demand up to the model's context, so a short chat does not reserve 2048 positions
 * of every layer. The cache owns its memory; {@link #close} frees it when the sequence ends or is cancelled.
 */
public final class KvCache implements AutoCloseable {
    private static final int INITIAL_CAPACITY = 64;

    private final int layers;
    private final int hidden;
    private final int maxPositions;
    private Arena arena;
    private MemorySegment[] keys;   // per local layer: (capacity, hidden)
    private MemorySegment[] values; // per local layer: (capacity, hidden)
    private int capacity;
    private int length;

    public KvCache(int layers, int hidden, int maxPositions) {
        this.layers = layers;
        this.hidden = hidden;
        this.maxPositions = maxPositions;
        this.keys = new MemorySegment[layers];
        this.values = new MemorySegment[layers];
    }

    /** Tokens already stored: the position the next token will take. */
    public int length() {
        return length;
    }

    public int maxPositions() {
        return maxPositions;
    }

    /** Makes room for {@code extra} more tokens; fails when the context would overflow. */
    public void reserve(int extra) {
        int needed = length + extra;
        if (needed > maxPositions) {
            throw new IllegalArgumentException("sequence of " + needed + " tokens exceeds the model's context of "
                    + maxPositions + " positions");
        }
        if (needed <= capacity) {
            return;
        }
        int newCapacity = Math.max(INITIAL_CAPACITY, capacity);
        while (newCapacity < needed) {
            newCapacity *= 2;
        }
        newCapacity = Math.min(newCapacity, maxPositions);
        Arena newArena = Arena.ofShared();
        long rowBytes = (long) hidden * Float.BYTES;
        for (int layer = 0; layer < layers; layer++) {
            MemorySegment k = newArena.allocate(newCapacity * rowBytes, 64);
            MemorySegment v = newArena.allocate(newCapacity * rowBytes, 64);
            if (length > 0) {
                MemorySegment.copy(keys[layer], 0, k, 0, length * rowBytes);
                MemorySegment.copy(values[layer], 0, v, 0, length * rowBytes);
            }
            keys[layer] = k;
            values[layer] = v;
        }
        if (arena != null) {
            arena.close();
        }
        arena = newArena;
        capacity = newCapacity;
    }

    public MemorySegment keys(int localLayer) {
        return keys[localLayer];
    }

    public MemorySegment values(int localLayer) {
        return values[localLayer];
    }

    /** Called once every layer of the stage has written the step's keys and values. */
    public void advance(int tokens) {
        if (length + tokens > capacity) {
            throw new IllegalStateException("advance past reserved capacity");
        }
        length += tokens;
    }

    /** Bytes held now, for accounting and metrics. */
    public long bytes() {
        return 2L * layers * capacity * hidden * Float.BYTES;
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
            arena = null;
        }
        keys = new MemorySegment[layers];
        values = new MemorySegment[layers];
        capacity = 0;
        length = 0;
    }
}
