package io.bitrelay.runtime.quant;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;

/**
 * RPTQ's channel clustering (Yuan et al., arXiv 2304.01089): each channel is the point
 * (min, max) of its calibration range; k-means groups channels with similar ranges, so that each group
 * can be quantized with its own scale and zero point instead of sharing one range with the outliers.
 *
 * <p>Deterministic: k-means++ seeding from a {@link SplittableRandom} with a fixed seed, then Lloyd
 * iterations until no channel changes cluster (or {@code maxIterations}). Ties go to the lower cluster
 * index, an emptied cluster is re-seeded with the channel farthest from its centroid, and clusters that
 * cannot be told apart (fewer distinct ranges than k) are dropped, so a plan may have fewer than k.
 * Clusters are ordered by their range's midpoint, then width; channels inside a cluster keep ascending
 * channel order (the gather into plan order then walks memory forward).
 *
 * @param clusters      k, the most clusters wanted; clamped to the width. Default {@value #DEFAULT_CLUSTERS}.
 * @param seed          seed of k-means++; the same inputs and seed give the same plan. Default {@value #DEFAULT_SEED}.
 * @param maxIterations cap on Lloyd iterations. Default {@value #DEFAULT_MAX_ITERATIONS}.
 */
public record ChannelClustering(int clusters, long seed, int maxIterations) {
    public static final int DEFAULT_CLUSTERS = 8;
    public static final long DEFAULT_SEED = 0x5EED_2304_01089L;
    public static final int DEFAULT_MAX_ITERATIONS = 100;

    public ChannelClustering {
        if (clusters < 1) {
            throw new IllegalArgumentException("clusters must be >= 1, got " + clusters);
        }
        if (maxIterations < 1) {
            throw new IllegalArgumentException("maxIterations must be >= 1, got " + maxIterations);
        }
    }

    public ChannelClustering(int clusters) {
        this(clusters, DEFAULT_SEED, DEFAULT_MAX_ITERATIONS);
    }

    /**
     * Clusters channels by their calibration ranges.
     *
     * @param channelMin per-channel minimum over the calibration activations (width C)
     * @param channelMax per-channel maximum (width C), each ≥ its minimum
     */
    public ClusterPlan plan(float[] channelMin, float[] channelMax) {
        int width = channelMin.length;
        if (width == 0 || channelMax.length != width) {
            throw new IllegalArgumentException("channelMin and channelMax need the same length >= 1, got "
                    + channelMin.length + " and " + channelMax.length);
        }
        for (int i = 0; i < width; i++) {
            if (!Float.isFinite(channelMin[i]) || !Float.isFinite(channelMax[i]) || channelMin[i] > channelMax[i]) {
                throw new IllegalArgumentException("channel " + i + " has range [" + channelMin[i] + ", "
                        + channelMax[i] + "]; need finite min <= max");
            }
        }
        int k = Math.min(clusters, width);
        double[][] centroids = seed(channelMin, channelMax, k);
        int[] assignment = new int[width];
        Arrays.fill(assignment, -1);
        for (int iteration = 0; iteration < maxIterations; iteration++) {
            boolean changed = assign(channelMin, channelMax, centroids, assignment);
            if (!changed && iteration > 0) {
                break;
            }
            update(channelMin, channelMax, centroids, assignment);
        }
        return toPlan(channelMin, channelMax, centroids.length, assignment);
    }

    /** Clusters the channels of calibration activations ({@code rows × width}, row-major) by their ranges. */
    public ClusterPlan plan(float[] activations, int rows, int width) {
        float[][] ranges = channelRanges(activations, rows, width);
        return plan(ranges[0], ranges[1]);
    }

    /** Per-channel {min, max} over {@code rows × width} activations (row-major): the statistics RPTQ clusters. */
    public static float[][] channelRanges(float[] activations, int rows, int width) {
        if (rows < 1 || width < 1 || activations.length != (long) rows * width) {
            throw new IllegalArgumentException("activations of " + activations.length + " values are not " + rows
                    + " rows × " + width + " (need rows, width >= 1)");
        }
        float[] min = new float[width];
        float[] max = new float[width];
        Arrays.fill(min, Float.POSITIVE_INFINITY);
        Arrays.fill(max, Float.NEGATIVE_INFINITY);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < width; c++) {
                float v = activations[r * width + c];
                min[c] = Math.min(min[c], v); // NaN propagates and is refused by plan()
                max[c] = Math.max(max[c], v);
            }
        }
        return new float[][] {min, max};
    }

    /** k-means++: each next centroid is a channel drawn with probability ∝ squared distance to the nearest chosen. */
    private double[][] seed(float[] min, float[] max, int k) {
        int width = min.length;
        SplittableRandom random = new SplittableRandom(seed);
        List<double[]> chosen = new ArrayList<>();
        int first = random.nextInt(width);
        chosen.add(new double[] {min[first], max[first]});
        double[] nearest = new double[width]; // squared distance to the nearest chosen centroid
        Arrays.fill(nearest, Double.POSITIVE_INFINITY);
        while (chosen.size() < k) {
            double[] last = chosen.getLast();
            double total = 0;
            for (int i = 0; i < width; i++) {
                nearest[i] = Math.min(nearest[i], distance2(min[i], max[i], last));
                total += nearest[i];
            }
            if (total == 0) {
                break; // every channel sits on a chosen centroid: more clusters would be empty
            }
            double target = random.nextDouble() * total;
            int pick = width - 1;
            for (int i = 0; i < width; i++) {
                target -= nearest[i];
                if (target < 0 && nearest[i] > 0) {
                    pick = i;
                    break;
                }
            }
            while (nearest[pick] == 0) {
                pick--; // rounding left target >= 0 at the end: take the last channel not already a centroid
            }
            chosen.add(new double[] {min[pick], max[pick]});
        }
        return chosen.toArray(double[][]::new);
    }

    /** @return whether any channel changed cluster */
    private static boolean assign(float[] min, float[] max, double[][] centroids, int[] assignment) {
        boolean changed = false;
        for (int i = 0; i < min.length; i++) {
            int best = 0;
            double bestDistance = distance2(min[i], max[i], centroids[0]);
            for (int c = 1; c < centroids.length; c++) {
                double d = distance2(min[i], max[i], centroids[c]);
                if (d < bestDistance) {
                    best = c;
                    bestDistance = d;
                }
            }
            changed |= assignment[i] != best;
            assignment[i] = best;
        }
        return changed;
    }

    /** Centroids become their channels' means; an empty cluster takes the channel farthest from its centroid. */
    private static void update(float[] min, float[] max, double[][] centroids, int[] assignment) {
        int k = centroids.length;
        double[][] sums = new double[k][2];
        int[] counts = new int[k];
        for (int i = 0; i < min.length; i++) {
            sums[assignment[i]][0] += min[i];
            sums[assignment[i]][1] += max[i];
            counts[assignment[i]]++;
        }
        for (int c = 0; c < k; c++) {
            if (counts[c] > 0) {
                centroids[c][0] = sums[c][0] / counts[c];
                centroids[c][1] = sums[c][1] / counts[c];
            }
        }
        for (int c = 0; c < k; c++) {
            if (counts[c] == 0) {
                int farthest = -1;
                double farthestDistance = 0;
                for (int i = 0; i < min.length; i++) {
                    double d = distance2(min[i], max[i], centroids[assignment[i]]);
                    if (d > farthestDistance && counts[assignment[i]] > 1) {
                        farthest = i;
                        farthestDistance = d;
                    }
                }
                if (farthest < 0) {
                    continue; // nothing to split: the cluster stays empty and is dropped
                }
                counts[assignment[farthest]]--;
                assignment[farthest] = c;
                counts[c] = 1;
                centroids[c][0] = min[farthest];
                centroids[c][1] = max[farthest];
            }
        }
    }

    private static ClusterPlan toPlan(float[] min, float[] max, int k, int[] assignment) {
        int width = min.length;
        List<List<Integer>> members = new ArrayList<>();
        for (int c = 0; c < k; c++) {
            members.add(new ArrayList<>());
        }
        for (int i = 0; i < width; i++) {
            members.get(assignment[i]).add(i); // ascending channel order within a cluster
        }
        members.removeIf(List::isEmpty);
        record Cluster(List<Integer> channels, float min, float max) {
        }
        List<Cluster> found = new ArrayList<>();
        for (List<Integer> channels : members) {
            float lo = Float.POSITIVE_INFINITY;
            float hi = Float.NEGATIVE_INFINITY;
            for (int channel : channels) {
                lo = Math.min(lo, min[channel]);
                hi = Math.max(hi, max[channel]);
            }
            found.add(new Cluster(channels, lo, hi));
        }
        found.sort(Comparator.<Cluster>comparingDouble(c -> ((double) c.min() + c.max()) / 2)
                .thenComparingDouble(c -> (double) c.max() - c.min())
                .thenComparingInt(c -> c.channels().getFirst()));
        int[] permutation = new int[width];
        int[] ends = new int[found.size()];
        float[] clusterMin = new float[found.size()];
        float[] clusterMax = new float[found.size()];
        int position = 0;
        for (int c = 0; c < found.size(); c++) {
            for (int channel : found.get(c).channels()) {
                permutation[position++] = channel;
            }
            ends[c] = position;
            clusterMin[c] = found.get(c).min();
            clusterMax[c] = found.get(c).max();
        }
        return new ClusterPlan(permutation, ends, clusterMin, clusterMax);
    }

    private static double distance2(float min, float max, double[] centroid) {
        double dMin = min - centroid[0];
        double dMax = max - centroid[1];
        return dMin * dMin + dMax * dMax;
    }
}
