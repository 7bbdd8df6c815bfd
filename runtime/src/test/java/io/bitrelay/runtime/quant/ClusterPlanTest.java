package io.bitrelay.runtime.quant;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(10)
class ClusterPlanTest {
    private static final ClusterPlan PLAN = new ClusterPlan(new int[] {4, 0, 2, 1, 3}, new int[] {2, 5},
            new float[] {-1.5f, 9f}, new float[] {1.25f, 11f});

    @Test
    void shouldRoundTripThroughBytesKeepingItsFingerprint() {
        byte[] bytes = PLAN.toBytes();
        assertEquals(16 + 5 * 4 + 2 * 12, bytes.length);
        ClusterPlan back = ClusterPlan.fromBytes(bytes);
        assertEquals(PLAN, back);
        assertEquals(PLAN.fingerprint(), back.fingerprint());
        assertArrayEquals(PLAN.permutation(), back.permutation());
        assertEquals(9f, back.clusterMin(1));
        assertEquals(11f, back.clusterMax(1));
        CRC32C crc = new CRC32C();
        crc.update(bytes);
        assertEquals((int) crc.getValue(), PLAN.fingerprint(), "the fingerprint is CRC32C of the wire form");
    }

    @Test
    void shouldDescribeClustersAndTheInversePermutation() {
        assertEquals(5, PLAN.width());
        assertEquals(2, PLAN.clusters());
        assertEquals(0, PLAN.clusterStart(0));
        assertEquals(2, PLAN.clusterStart(1));
        assertEquals(3, PLAN.clusterSize(1));
        int[] inverse = PLAN.inversePermutation();
        int[] permutation = PLAN.permutation();
        for (int j = 0; j < 5; j++) {
            assertEquals(j, inverse[permutation[j]]);
        }
        assertEquals(0, PLAN.clusterOfChannel(4));
        assertEquals(0, PLAN.clusterOfChannel(0));
        assertEquals(1, PLAN.clusterOfChannel(2));
        assertEquals(1, PLAN.clusterOfChannel(3));
    }

    @Test
    void shouldChangeFingerprintWhenAnythingChanges() {
        ClusterPlan swapped = new ClusterPlan(new int[] {0, 4, 2, 1, 3}, new int[] {2, 5},
                new float[] {-1.5f, 9f}, new float[] {1.25f, 11f});
        ClusterPlan otherRange = new ClusterPlan(new int[] {4, 0, 2, 1, 3}, new int[] {2, 5},
                new float[] {-1.5f, 9f}, new float[] {1.25f, 11.5f});
        ClusterPlan otherSplit = new ClusterPlan(new int[] {4, 0, 2, 1, 3}, new int[] {3, 5},
                new float[] {-1.5f, 9f}, new float[] {1.25f, 11f});
        assertNotEquals(PLAN.fingerprint(), swapped.fingerprint());
        assertNotEquals(PLAN.fingerprint(), otherRange.fingerprint());
        assertNotEquals(PLAN.fingerprint(), otherSplit.fingerprint());
        assertNotEquals(PLAN, swapped);
    }

    @Test
    void shouldRejectCorruptOrTruncatedBytes() {
        byte[] bytes = PLAN.toBytes();
        byte[] badMagic = bytes.clone();
        badMagic[0] ^= 1;
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ClusterPlan.fromBytes(badMagic))
                .getMessage().contains("magic"));
        byte[] truncated = java.util.Arrays.copyOf(bytes, bytes.length - 1);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ClusterPlan.fromBytes(truncated))
                .getMessage().contains("bytes"));
        byte[] repeated = bytes.clone();
        ByteBuffer.wrap(repeated).order(ByteOrder.LITTLE_ENDIAN).putInt(16, 0); // position 0 now holds channel 0 twice
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ClusterPlan.fromBytes(repeated))
                .getMessage().contains("not a permutation"));
        assertThrows(IllegalArgumentException.class, () -> ClusterPlan.fromBytes(new byte[3]));
    }

    @Test
    void shouldRejectInconsistentPlans() {
        assertThrows(IllegalArgumentException.class, () -> new ClusterPlan(new int[] {0, 1}, new int[] {1},
                new float[] {0}, new float[] {1})); // last cluster ends before the width
        assertThrows(IllegalArgumentException.class, () -> new ClusterPlan(new int[] {0, 1}, new int[] {1, 1, 2},
                new float[] {0, 0, 0}, new float[] {1, 1, 1})); // an empty cluster
        assertThrows(IllegalArgumentException.class, () -> new ClusterPlan(new int[] {0, 1}, new int[] {2},
                new float[] {2}, new float[] {1})); // min > max
        assertThrows(IllegalArgumentException.class, () -> new ClusterPlan(new int[] {0, 2}, new int[] {2},
                new float[] {0}, new float[] {1})); // channel out of range
        assertThrows(IllegalArgumentException.class, () -> new ClusterPlan(new int[] {0, 1}, new int[] {2},
                new float[] {Float.NaN}, new float[] {1}));
    }

    @Test
    void shouldBuildAOneClusterIdentityBaseline() {
        ClusterPlan identity = ClusterPlan.identity(4, -1, 1);
        assertEquals(1, identity.clusters());
        assertArrayEquals(new int[] {0, 1, 2, 3}, identity.permutation());
    }
}
