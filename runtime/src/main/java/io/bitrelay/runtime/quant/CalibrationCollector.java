package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationObserver;
import io.bitrelay.runtime.model.opt.ActivationSite;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * An {@link ActivationObserver} that keeps, for every (layer, site) the model shows it, the per-channel
 * min, max and absmax over all rows seen so far. Accumulation is order-independent, so sequences may be
 * fed in any order or batching.
 */
public final class CalibrationCollector implements ActivationObserver {
    private final Map<CalibrationStats.Key, Accumulator> accumulators = new TreeMap<>();

    private static final class Accumulator {
        final float[] min;    // (width)
        final float[] max;    // (width)
        final float[] absMax; // (width)
        long rows;

        Accumulator(int width) {
            min = new float[width];
            max = new float[width];
            absMax = new float[width];
            Arrays.fill(min, Float.POSITIVE_INFINITY);
            Arrays.fill(max, Float.NEGATIVE_INFINITY);
        }

        void add(MemorySegment x, int rowCount) {
            int width = absMax.length;
            float[] row = new float[width];
            for (int i = 0; i < rowCount; i++) {
                MemorySegment.copy(x, ValueLayout.JAVA_FLOAT_UNALIGNED, (long) i * width * Float.BYTES, row, 0, width);
                for (int j = 0; j < width; j++) {
                    float v = row[j];
                    min[j] = Math.min(min[j], v);
                    max[j] = Math.max(max[j], v);
                    absMax[j] = Math.max(absMax[j], Math.abs(v));
                }
            }
            rows += rowCount;
        }
    }

    @Override
    public synchronized void observe(int layer, ActivationSite site, MemorySegment rows, int rowCount, int width) {
        Accumulator accumulator = accumulators.computeIfAbsent(new CalibrationStats.Key(layer, site), k -> new Accumulator(width));
        if (accumulator.absMax.length != width) {
            throw new IllegalArgumentException("layer " + layer + " " + site.key() + ": width " + width
                    + " after " + accumulator.absMax.length + " before");
        }
        accumulator.add(rows, rowCount);
    }

    /** Rows seen at one (layer, site), 0 if none. */
    public synchronized long rows(int layer, ActivationSite site) {
        Accumulator accumulator = accumulators.get(new CalibrationStats.Key(layer, site));
        return accumulator == null ? 0 : accumulator.rows;
    }

    /** A snapshot of everything collected so far. */
    public synchronized CalibrationStats stats(CalibrationStats.Source source) {
        Map<CalibrationStats.Key, ChannelStats> entries = new TreeMap<>();
        accumulators.forEach((key, a) -> entries.put(key,
                new ChannelStats(a.min.clone(), a.max.clone(), a.absMax.clone(), a.rows)));
        return new CalibrationStats(source, entries);
    }
}
