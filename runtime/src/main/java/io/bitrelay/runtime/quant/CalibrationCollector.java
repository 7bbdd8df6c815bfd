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
 * absmax over all rows seen so far and the per-channel [min, max] its {@link RangeEstimator} asks for: the
 * extremes over every row (order-independent) or the mean of each observed batch's extremes (independent
 * of the order of the batches, not of how rows are cut into batches).
 */
public final class CalibrationCollector implements ActivationObserver {
    private final Map<CalibrationStats.Key, Accumulator> accumulators = new TreeMap<>();
    private final RangeEstimator ranges;

    /**
     * With the extremes ({@link RangeEstimator#MIN_MAX}): what link calibration plans from. Recipe calibration (eval,
     * a cluster's stage workers) names its estimator ({@code RecipeOptions.activationRanges}).
     */
    public CalibrationCollector() {
        this(RangeEstimator.MIN_MAX);
    }

    public CalibrationCollector(RangeEstimator ranges) {
        this.ranges = ranges;
    }

    public RangeEstimator ranges() {
        return ranges;
    }

    private static final class Accumulator {
        final float[] min;    // (width)
        final float[] max;    // (width)
        final float[] absMax; // (width)
        final double[] batchMinSum; // (width) Σ over batches of each batch's minimum
        final double[] batchMaxSum; // (width)
        long rows;
        long batches;

        Accumulator(int width) {
            min = new float[width];
            max = new float[width];
            absMax = new float[width];
            batchMinSum = new double[width];
            batchMaxSum = new double[width];
            Arrays.fill(min, Float.POSITIVE_INFINITY);
            Arrays.fill(max, Float.NEGATIVE_INFINITY);
        }

        void add(MemorySegment x, int rowCount) {
            int width = absMax.length;
            if (rowCount == 0) {
                return;
            }
            float[] row = new float[width];
            float[] batchMin = new float[width];
            float[] batchMax = new float[width];
            Arrays.fill(batchMin, Float.POSITIVE_INFINITY);
            Arrays.fill(batchMax, Float.NEGATIVE_INFINITY);
            for (int i = 0; i < rowCount; i++) {
                MemorySegment.copy(x, ValueLayout.JAVA_FLOAT_UNALIGNED, (long) i * width * Float.BYTES, row, 0, width);
                for (int j = 0; j < width; j++) {
                    float v = row[j];
                    batchMin[j] = Math.min(batchMin[j], v);
                    batchMax[j] = Math.max(batchMax[j], v);
                    absMax[j] = Math.max(absMax[j], Math.abs(v));
                }
            }
            for (int j = 0; j < width; j++) {
                min[j] = Math.min(min[j], batchMin[j]);
                max[j] = Math.max(max[j], batchMax[j]);
                batchMinSum[j] += batchMin[j];
                batchMaxSum[j] += batchMax[j];
            }
            rows += rowCount;
            batches++;
        }

        ChannelStats stats(RangeEstimator ranges) {
            return switch (ranges) {
                case MIN_MAX -> new ChannelStats(min.clone(), max.clone(), absMax.clone(), rows);
                case BATCH_MEAN -> new ChannelStats(mean(batchMinSum), mean(batchMaxSum), absMax.clone(), rows);
            };
        }

        private float[] mean(double[] sums) {
            float[] out = new float[sums.length];
            for (int j = 0; j < out.length; j++) {
                out[j] = batches == 0 ? 0f : (float) (sums[j] / batches);
            }
            return out;
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
        accumulators.forEach((key, a) -> entries.put(key, a.stats(ranges)));
        return new CalibrationStats(source.withRanges(ranges), entries);
    }
}
