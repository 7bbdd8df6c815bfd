package io.bitrelay.deploy.bench;

import java.util.Arrays;

/**
 * Count, mean and percentiles of a sample of latencies (milliseconds). Percentiles interpolate linearly between the
 * closest ranks (numpy's default), so a short run's p99 lies between its two slowest values instead of jumping to
 * the slowest one; an empty sample reports NaN, which the table prints as "-".
 */
public record LatencyStats(int count, double mean, double p50, double p99) {
    public static LatencyStats of(double[] values) {
        if (values.length == 0) {
            return new LatencyStats(0, Double.NaN, Double.NaN, Double.NaN);
        }
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return new LatencyStats(sorted.length, Arrays.stream(sorted).average().orElseThrow(), percentile(sorted, 50),
                percentile(sorted, 99));
    }

    /** The {@code p}-th percentile (0..100) of ascending {@code sorted}, which must not be empty. */
    static double percentile(double[] sorted, double p) {
        if (p < 0 || p > 100) {
            throw new IllegalArgumentException("a percentile is in 0..100, got " + p);
        }
        double rank = p / 100 * (sorted.length - 1);
        int below = (int) Math.floor(rank);
        int above = Math.min(below + 1, sorted.length - 1);
        return sorted[below] + (rank - below) * (sorted[above] - sorted[below]);
    }
}
