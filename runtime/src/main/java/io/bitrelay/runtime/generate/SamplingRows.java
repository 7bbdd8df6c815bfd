package io.bitrelay.runtime.generate;

/**
 * The sampling parameters of one decode step's rows, for a sampler that takes them all at once (the device's
 * sampling kernel, {@link DeviceSamplingReference}). Allocated once with a capacity and refilled every step
 * ({@link #clear}, then {@link #add} per row), so the per-step path allocates nothing. The counter of a row is its
 * sequence's number of sampled tokens so far: with the seed it names the random draw, so a (seed, counter) pair
 * gives the same token whatever else shares the batch.
 */
public final class SamplingRows {
    private final float[] temperature;
    private final int[] topK;
    private final float[] topP;
    private final long[] seed;
    private final long[] counter;
    private int count;

    public SamplingRows(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("capacity must be positive, got " + capacity);
        }
        temperature = new float[capacity];
        topK = new int[capacity];
        topP = new float[capacity];
        seed = new long[capacity];
        counter = new long[capacity];
    }

    public int capacity() {
        return temperature.length;
    }

    public int count() {
        return count;
    }

    /** Forgets every row, keeping the arrays. */
    public void clear() {
        count = 0;
    }

    /** Appends a row sampled as {@code params} says, its sequence having sampled {@code counter} tokens so far. */
    public void add(SamplingParams params, long counter) {
        add(params.temperature(), params.topK(), params.topP(), params.seed(), counter);
    }

    public void add(float temperature, int topK, float topP, long seed, long counter) {
        if (count == capacity()) {
            throw new IllegalArgumentException("sampling rows full: capacity " + capacity());
        }
        store(count, temperature, topK, topP, seed, counter);
        count++;
    }

    /** Replaces row {@code row} (below {@link #count}). */
    public void set(int row, float temperature, int topK, float topP, long seed, long counter) {
        store(check(row), temperature, topK, topP, seed, counter);
    }

    private void store(int row, float temperature, int topK, float topP, long seed, long counter) {
        if (!(temperature >= 0f) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature of row " + row + " must be a finite number >= 0, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK of row " + row + " must be >= 0, got " + topK);
        }
        if (!(topP > 0f && topP <= 1f)) {
            throw new IllegalArgumentException("topP of row " + row + " must be in (0, 1], got " + topP);
        }
        if (counter < 0) {
            throw new IllegalArgumentException("counter of row " + row + " must be >= 0, got " + counter);
        }
        this.temperature[row] = temperature;
        this.topK[row] = topK;
        this.topP[row] = topP;
        this.seed[row] = seed;
        this.counter[row] = counter;
    }

    public float temperature(int row) {
        return temperature[check(row)];
    }

    public int topK(int row) {
        return topK[check(row)];
    }

    public float topP(int row) {
        return topP[check(row)];
    }

    public long seed(int row) {
        return seed[check(row)];
    }

    public long counter(int row) {
        return counter[check(row)];
    }

    private int check(int row) {
        if (row < 0 || row >= count) {
            throw new IllegalArgumentException("row " + row + " of " + count + " sampling rows");
        }
        return row;
    }
}
