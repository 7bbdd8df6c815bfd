package io.bitrelay.runtime.quant;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.zip.CRC32C;

/**
 * An RPTQ channel plan for activations of one width: channels reordered so each cluster is contiguous,
 * and each cluster's calibrated range (the union of its channels' [min, max]). Immutable; the coordinator
 * ships it to both ends of a link and saves it with the recipe, as {@link #toBytes()}.
 *
 * <p>Position {@code j} of the reordered activations holds channel {@code permutation[j]}; cluster
 * {@code c} covers positions {@code [clusterStart(c), clusterEnd(c))}.
 *
 * <pre>
 *  wire form, little-endian, version 1
 *  +------------------+-------------+---------------+--------------+------------------+
 *  | magic 'RPQP' u32 | version u32 | width (i32,C) | clusters (k) | permutation C×i32 |
 *  +------------------+-------------+---------------+--------------+------------------+
 *  | cluster ends k × i32 (last = C) | cluster min k × f32 | cluster max k × f32 |
 *  +---------------------------------+---------------------+---------------------+
 * </pre>
 */
public final class ClusterPlan {
    /** 'R' 'P' 'Q' 'P' as the bytes appear, read as a little-endian u32. */
    public static final int MAGIC = 'R' | 'P' << 8 | 'Q' << 16 | 'P' << 24;
    public static final int VERSION = 1;
    private static final int HEADER_BYTES = 16;

    private final int[] permutation;        // (width) channel at each reordered position
    private final int[] inversePermutation; // (width) reordered position of each channel
    private final int[] clusterEnds;        // (clusters) exclusive end of each cluster, ascending, last = width
    private final float[] clusterMin;       // (clusters) calibrated minimum over the cluster's channels
    private final float[] clusterMax;       // (clusters) calibrated maximum over the cluster's channels
    private final byte[] bytes;             // the wire form, kept: fingerprint and equality use it
    private final int fingerprint;

    /**
     * @param permutation channel at each reordered position: a permutation of 0..width-1
     * @param clusterEnds exclusive end position of each cluster, strictly ascending, the last equal to width
     * @param clusterMin  calibrated minimum of each cluster, finite
     * @param clusterMax  calibrated maximum of each cluster, finite and ≥ its minimum
     */
    public ClusterPlan(int[] permutation, int[] clusterEnds, float[] clusterMin, float[] clusterMax) {
        this.permutation = permutation.clone();
        this.clusterEnds = clusterEnds.clone();
        this.clusterMin = clusterMin.clone();
        this.clusterMax = clusterMax.clone();
        this.inversePermutation = validate(this.permutation, this.clusterEnds, this.clusterMin, this.clusterMax);
        this.bytes = encode();
        CRC32C crc = new CRC32C();
        crc.update(bytes);
        this.fingerprint = (int) crc.getValue();
    }

    /** The plan of {@link #toBytes()}; throws IllegalArgumentException naming what is wrong. */
    public static ClusterPlan fromBytes(byte[] bytes) {
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < HEADER_BYTES) {
            throw new IllegalArgumentException("cluster plan of " + bytes.length + " bytes is shorter than its "
                    + HEADER_BYTES + "-byte header");
        }
        int magic = in.getInt();
        if (magic != MAGIC) {
            throw new IllegalArgumentException(String.format("cluster plan magic 0x%08x, expected 0x%08x ('RPQP')",
                    magic, MAGIC));
        }
        int version = in.getInt();
        if (version != VERSION) {
            throw new IllegalArgumentException("cluster plan version " + version + ", this build reads " + VERSION);
        }
        int width = in.getInt();
        int clusters = in.getInt();
        if (width < 1 || clusters < 1 || clusters > width) {
            throw new IllegalArgumentException("cluster plan declares width " + width + " and " + clusters
                    + " clusters (need 1 <= clusters <= width)");
        }
        long expected = HEADER_BYTES + 4L * width + 12L * clusters;
        if (bytes.length != expected) {
            throw new IllegalArgumentException("cluster plan of width " + width + " and " + clusters + " clusters is "
                    + expected + " bytes, got " + bytes.length);
        }
        int[] permutation = new int[width];
        in.asIntBuffer().get(permutation);
        in.position(in.position() + 4 * width);
        int[] ends = new int[clusters];
        in.asIntBuffer().get(ends);
        in.position(in.position() + 4 * clusters);
        float[] min = new float[clusters];
        in.asFloatBuffer().get(min);
        in.position(in.position() + 4 * clusters);
        float[] max = new float[clusters];
        in.asFloatBuffer().get(max);
        return new ClusterPlan(permutation, ends, min, max);
    }

    /** The wire form (a copy); {@link #fromBytes} reads it back into an equal plan. */
    public byte[] toBytes() {
        return bytes.clone();
    }

    /** CRC32C of {@link #toBytes()}: equal plans have equal fingerprints, on every node and in every run. */
    public int fingerprint() {
        return fingerprint;
    }

    /** Channels (C): the activation width this plan is for. */
    public int width() {
        return permutation.length;
    }

    public int clusters() {
        return clusterEnds.length;
    }

    public int clusterStart(int cluster) {
        return cluster == 0 ? 0 : clusterEnds[cluster - 1];
    }

    public int clusterEnd(int cluster) {
        return clusterEnds[cluster];
    }

    public int clusterSize(int cluster) {
        return clusterEnd(cluster) - clusterStart(cluster);
    }

    public float clusterMin(int cluster) {
        return clusterMin[cluster];
    }

    public float clusterMax(int cluster) {
        return clusterMax[cluster];
    }

    /** Channel at each reordered position (a copy). */
    public int[] permutation() {
        return permutation.clone();
    }

    /** Reordered position of each channel (a copy): {@code inverse[permutation[j]] == j}. */
    public int[] inversePermutation() {
        return inversePermutation.clone();
    }

    /** The cluster holding {@code channel}. */
    public int clusterOfChannel(int channel) {
        int position = inversePermutation[channel];
        int found = Arrays.binarySearch(clusterEnds, position);
        return found >= 0 ? found + 1 : -found - 1; // an end is exclusive: position == end belongs to the next
    }

    /** A one-cluster plan in channel order: plain per-token quantization, the baseline RPTQ is measured against. */
    public static ClusterPlan identity(int width, float min, float max) {
        int[] permutation = new int[width];
        Arrays.setAll(permutation, i -> i);
        return new ClusterPlan(permutation, new int[] {width}, new float[] {min}, new float[] {max});
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ClusterPlan plan && Arrays.equals(bytes, plan.bytes);
    }

    @Override
    public int hashCode() {
        return fingerprint;
    }

    @Override
    public String toString() {
        return String.format("ClusterPlan[width %d, %d clusters, fingerprint %08x]", width(), clusters(), fingerprint);
    }

    private byte[] encode() {
        int width = permutation.length;
        int clusters = clusterEnds.length;
        ByteBuffer out = ByteBuffer.allocate(HEADER_BYTES + 4 * width + 12 * clusters).order(ByteOrder.LITTLE_ENDIAN);
        out.putInt(MAGIC).putInt(VERSION).putInt(width).putInt(clusters);
        for (int channel : permutation) {
            out.putInt(channel);
        }
        for (int end : clusterEnds) {
            out.putInt(end);
        }
        for (float min : clusterMin) {
            out.putFloat(min);
        }
        for (float max : clusterMax) {
            out.putFloat(max);
        }
        return out.array();
    }

    /** @return the inverse permutation */
    private static int[] validate(int[] permutation, int[] clusterEnds, float[] clusterMin, float[] clusterMax) {
        int width = permutation.length;
        int clusters = clusterEnds.length;
        if (width < 1) {
            throw new IllegalArgumentException("a cluster plan needs at least one channel");
        }
        if (clusters < 1 || clusterMin.length != clusters || clusterMax.length != clusters) {
            throw new IllegalArgumentException("a cluster plan needs >= 1 cluster and one min and max per cluster, got "
                    + clusters + " ends, " + clusterMin.length + " mins, " + clusterMax.length + " maxes");
        }
        int[] inverse = new int[width];
        Arrays.fill(inverse, -1);
        for (int position = 0; position < width; position++) {
            int channel = permutation[position];
            if (channel < 0 || channel >= width || inverse[channel] != -1) {
                throw new IllegalArgumentException("permutation is not a permutation of 0.." + (width - 1)
                        + ": position " + position + " holds channel " + channel
                        + (channel >= 0 && channel < width ? " again" : ""));
            }
            inverse[channel] = position;
        }
        int previous = 0;
        for (int c = 0; c < clusters; c++) {
            if (clusterEnds[c] <= previous) {
                throw new IllegalArgumentException("cluster " + c + " ends at " + clusterEnds[c]
                        + ", not after its start " + previous + ": clusters must be non-empty and ascending");
            }
            previous = clusterEnds[c];
            if (!Float.isFinite(clusterMin[c]) || !Float.isFinite(clusterMax[c]) || clusterMin[c] > clusterMax[c]) {
                throw new IllegalArgumentException("cluster " + c + " has range [" + clusterMin[c] + ", "
                        + clusterMax[c] + "]; need finite min <= max");
            }
        }
        if (previous != width) {
            throw new IllegalArgumentException("the last cluster ends at " + previous + ", the width is " + width);
        }
        return inverse;
    }
}
