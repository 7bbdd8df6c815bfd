package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationObserver;
import io.bitrelay.runtime.model.opt.ActivationSite;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * An {@link ActivationObserver} that keeps a uniform sample of at most {@code maxRows} rows of every linear input it
 * sees ({@link QuantPlanner#REORDERED_SITES}): what {@link ClusterRangeSearch} measures candidate ranges on. A
 * reservoir per (layer, site), seeded from the key, so the same rows in the same order give the same sample; memory
 * is bounded by {@code maxRows × width × 4} bytes per site whatever the amount of calibration data.
 */
public final class ActivationSampler implements ActivationObserver {
    private final int maxRows;
    private final Map<CalibrationStats.Key, Reservoir> reservoirs = new TreeMap<>();

    /** The rows kept of one (layer, site): {@code rows} (count, width) in the channel order the model produced them. */
    public record Sample(float[] rows, int count, int width) {
        public float get(int row, int channel) {
            return rows[row * width + channel];
        }
    }

    public ActivationSampler(int maxRows) {
        if (maxRows < 1) {
            throw new IllegalArgumentException("an activation sample needs at least 1 row, got " + maxRows);
        }
        this.maxRows = maxRows;
    }

    @Override
    public synchronized void observe(int layer, ActivationSite site, MemorySegment rows, int rowCount, int width) {
        if (!QuantPlanner.REORDERED_SITES.contains(site)) {
            return;
        }
        CalibrationStats.Key key = new CalibrationStats.Key(layer, site);
        Reservoir reservoir = reservoirs.computeIfAbsent(key, k -> new Reservoir(maxRows, width, 31L * layer + site.ordinal()));
        if (reservoir.width != width) {
            throw new IllegalArgumentException("layer " + layer + " " + site.key() + ": width " + width + " after "
                    + reservoir.width + " before");
        }
        for (int i = 0; i < rowCount; i++) {
            reservoir.offer(rows, (long) i * width * Float.BYTES);
        }
    }

    /** The sample of one (layer, site), or null if that site was never seen. */
    public synchronized Sample sample(int layer, ActivationSite site) {
        Reservoir reservoir = reservoirs.get(new CalibrationStats.Key(layer, site));
        return reservoir == null ? null : new Sample(reservoir.rows.clone(), reservoir.filled, reservoir.width);
    }

    /** Algorithm R: after n offers every row seen so far is kept with probability maxRows / n. */
    private static final class Reservoir {
        final int width;
        final float[] rows;
        final SplittableRandom random;
        int filled;
        long seen;

        Reservoir(int maxRows, int width, long seed) {
            this.width = width;
            this.rows = new float[maxRows * width];
            this.random = new SplittableRandom(seed);
        }

        void offer(MemorySegment source, long offset) {
            int capacity = rows.length / width;
            long slot = filled < capacity ? filled++ : random.nextLong(seen + 1);
            seen++;
            if (slot < capacity) {
                MemorySegment.copy(source, ValueLayout.JAVA_FLOAT_UNALIGNED, offset, rows, (int) slot * width, width);
            }
        }
    }
}
