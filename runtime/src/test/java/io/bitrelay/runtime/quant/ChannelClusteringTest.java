package io.bitrelay.runtime.quant;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class ChannelClusteringTest {

    /** Channel c belongs to group c % 3: 0 = ordinary [-1, 1], 1 = outlier [-50, 50], 2 = shifted [9, 11]; ±10% jitter. */
    private static float[][] threeGroups(int width, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] min = new float[width];
        float[] max = new float[width];
        for (int c = 0; c < width; c++) {
            float center = switch (c % 3) {
                case 0, 1 -> 0f;
                default -> 10f;
            };
            float halfWidth = c % 3 == 1 ? 50f : 1f;
            min[c] = center - halfWidth * (float) random.nextDouble(0.9, 1.1);
            max[c] = center + halfWidth * (float) random.nextDouble(0.9, 1.1);
        }
        return new float[][] {min, max};
    }

    @Test
    void shouldGiveTheSamePlanForTheSameInputsAndSeed() {
        SplittableRandom random = new SplittableRandom(7);
        float[] min = new float[500];
        float[] max = new float[500];
        for (int c = 0; c < 500; c++) {
            min[c] = (float) -random.nextDouble(0.1, 30);
            max[c] = (float) random.nextDouble(0.1, 30);
        }
        ClusterPlan first = new ChannelClustering(8).plan(min, max);
        ClusterPlan second = new ChannelClustering(8).plan(min.clone(), max.clone());
        assertEquals(first, second);
        assertEquals(first.fingerprint(), second.fingerprint());
        assertEquals(8, first.clusters());
    }

    @Test
    void shouldSeparateObviouslyDistinctChannelGroups() {
        int width = 768;
        float[][] ranges = threeGroups(width, 3);
        for (int k : new int[] {3, 4, 8}) {
            ClusterPlan plan = new ChannelClustering(k).plan(ranges[0], ranges[1]);
            Set<Integer> groupsSeen = new HashSet<>();
            for (int cluster = 0; cluster < plan.clusters(); cluster++) {
                int[] permutation = plan.permutation();
                int group = permutation[plan.clusterStart(cluster)] % 3;
                for (int j = plan.clusterStart(cluster); j < plan.clusterEnd(cluster); j++) {
                    assertEquals(group, permutation[j] % 3, "k " + k + ": cluster " + cluster + " mixes groups");
                }
                groupsSeen.add(group);
            }
            assertEquals(3, groupsSeen.size(), "k " + k + ": every group has a cluster");
            if (k == 3) {
                for (int cluster = 0; cluster < 3; cluster++) {
                    assertEquals(width / 3, plan.clusterSize(cluster));
                }
            }
        }
    }

    @Test
    void shouldKeepClustersContiguousInAscendingChannelOrderWithTheUnionOfTheirRanges() {
        float[][] ranges = threeGroups(300, 5);
        ClusterPlan plan = new ChannelClustering(3).plan(ranges[0], ranges[1]);
        int[] permutation = plan.permutation();
        for (int cluster = 0; cluster < plan.clusters(); cluster++) {
            float lo = Float.POSITIVE_INFINITY;
            float hi = Float.NEGATIVE_INFINITY;
            for (int j = plan.clusterStart(cluster); j < plan.clusterEnd(cluster); j++) {
                if (j > plan.clusterStart(cluster)) {
                    assertTrue(permutation[j] > permutation[j - 1], "ascending channels inside a cluster");
                }
                assertEquals(cluster, plan.clusterOfChannel(permutation[j]));
                lo = Math.min(lo, ranges[0][permutation[j]]);
                hi = Math.max(hi, ranges[1][permutation[j]]);
            }
            assertEquals(lo, plan.clusterMin(cluster));
            assertEquals(hi, plan.clusterMax(cluster));
        }
        // ordered by midpoint: the ordinary and outlier groups (centred on 0) before the shifted one
        assertTrue(plan.clusterMin(2) > 8, "the shifted cluster comes last: " + plan);
    }

    @Test
    void shouldClampKToTheWidthAndDropClustersThatCannotBeToldApart() {
        float[] min = {-1, -2, -3, -4, -5};
        float[] max = {1, 2, 3, 4, 5};
        assertEquals(5, new ChannelClustering(64).plan(min, max).clusters());
        float[] same = {-1, -1, -1, -1};
        float[] sameMax = {2, 2, 2, 2};
        ClusterPlan plan = new ChannelClustering(4).plan(same, sameMax);
        assertEquals(1, plan.clusters());
        assertEquals(4, plan.clusterSize(0));
        assertEquals(2, new ChannelClustering(4).plan(new float[] {0, 0, 5, 5}, new float[] {1, 1, 6, 6}).clusters());
    }

    @Test
    void shouldRejectInvalidStatisticsAndSettingsByName() {
        ChannelClustering clustering = new ChannelClustering(4);
        IllegalArgumentException lengths = assertThrows(IllegalArgumentException.class,
                () -> clustering.plan(new float[3], new float[4]));
        assertTrue(lengths.getMessage().contains("same length"), lengths.getMessage());
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                () -> clustering.plan(new float[] {0, Float.NaN}, new float[] {1, 1}));
        assertTrue(nan.getMessage().contains("channel 1"), nan.getMessage());
        IllegalArgumentException inverted = assertThrows(IllegalArgumentException.class,
                () -> clustering.plan(new float[] {2}, new float[] {1}));
        assertTrue(inverted.getMessage().contains("min <= max"), inverted.getMessage());
        IllegalArgumentException k = assertThrows(IllegalArgumentException.class, () -> new ChannelClustering(0));
        assertTrue(k.getMessage().contains("clusters"), k.getMessage());
        assertThrows(IllegalArgumentException.class, () -> clustering.plan(new float[0], new float[0]));
        assertThrows(IllegalArgumentException.class, () -> clustering.plan(new float[5], 2, 3));
    }

    @Test
    void shouldComputeChannelRangesFromCalibrationRows() {
        float[] rows = {1, -2, 3,
                        -4, 5, 0};
        float[][] ranges = ChannelClustering.channelRanges(rows, 2, 3);
        assertEquals(-4, ranges[0][0]);
        assertEquals(1, ranges[1][0]);
        assertEquals(-2, ranges[0][1]);
        assertEquals(5, ranges[1][1]);
        assertEquals(0, ranges[0][2]);
        assertEquals(3, ranges[1][2]);
    }
}
