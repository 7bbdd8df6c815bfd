package io.bitrelay.runtime.model.opt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Keys and values of one sequence for the layers one stage owns, each layer (capacity, hidden), in a
 * {@link KvPrecision}: FP32 as computed, or quantized per (token, head) group ({@link QuantizedKvRows}).
 * Capacity doubles on demand up to the model's context, so a short chat does not reserve 2048 positions
 * of every layer; growing copies the stored positions (codes and group parameters as they are, no
 * re-quantization). The cache owns its memory; {@link #close} frees it when the sequence ends or is cancelled.
 */
public final class KvCache implements AutoCloseable {
    private static final int INITIAL_CAPACITY = 64;

    private final int layers;
    private final int hidden;
    private final int maxPositions;
    private final KvPrecision precision;
    private final KvRows[] keys;   // per local layer: (capacity, hidden)
    private final KvRows[] values; // per local layer: (capacity, hidden)
    private Arena arena;
    private int capacity;
    private int length;

    /** An FP32 cache, as before precisions existed. */
    public KvCache(int layers, int hidden, int maxPositions) {
        this(layers, 1, hidden, maxPositions, KvPrecision.FP32);
    }

    /** A cache of {@code precision}; quantized precisions group each token's channels per head of {@code headDim}. */
    public KvCache(int layers, int numHeads, int headDim, int maxPositions, KvPrecision precision) {
        this.layers = layers;
        this.hidden = numHeads * headDim;
        this.maxPositions = maxPositions;
        this.precision = precision;
        this.keys = new KvRows[layers];
        this.values = new KvRows[layers];
        for (int layer = 0; layer < layers; layer++) {
            keys[layer] = KvRows.create(precision, numHeads, headDim);
            values[layer] = KvRows.create(precision, numHeads, headDim);
        }
    }

    /** Tokens already stored: the position the next token will take. */
    public int length() {
        return length;
    }

    public int maxPositions() {
        return maxPositions;
    }

    public KvPrecision precision() {
        return precision;
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
        for (int layer = 0; layer < layers; layer++) {
            keys[layer].resize(newArena, newCapacity, length);
            values[layer].resize(newArena, newCapacity, length);
        }
        if (arena != null) {
            arena.close();
        }
        arena = newArena;
        capacity = newCapacity;
    }

    /** The FP32 keys of a layer, (capacity, hidden); only an FP32 cache has them. */
    public MemorySegment keys(int localLayer) {
        return fp32(keys[localLayer], "keys");
    }

    /** The FP32 values of a layer, (capacity, hidden); only an FP32 cache has them. */
    public MemorySegment values(int localLayer) {
        return fp32(values[localLayer], "values");
    }

    private MemorySegment fp32(KvRows rows, String what) {
        if (rows instanceof Fp32KvRows plain) {
            return plain.data();
        }
        throw new IllegalStateException("this cache stores " + what + " as " + precision + "; there is no FP32 segment");
    }

    KvRows keyRows(int localLayer) {
        return keys[localLayer];
    }

    KvRows valueRows(int localLayer) {
        return values[localLayer];
    }

    /** Called once every layer of the stage has written the step's keys and values. */
    public void advance(int tokens) {
        if (length + tokens > capacity) {
            throw new IllegalStateException("advance past reserved capacity");
        }
        length += tokens;
    }

    /** Bytes held now (codes and group parameters of every reserved position), for accounting and metrics. */
    public long bytes() {
        return 2L * layers * capacity * (layers == 0 ? 0 : keys[0].bytesPerPosition());
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
            arena = null;
        }
        for (int layer = 0; layer < layers; layer++) {
            keys[layer].release();
            values[layer].release();
        }
        capacity = 0;
        length = 0;
    }
}
