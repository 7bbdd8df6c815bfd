package io.bitrelay.runtime.cuda.link;

import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.kernels.LinkCodecKernels;
import io.bitrelay.runtime.quant.ClusterPlan;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * An RPTQ {@link ClusterPlan} on the device, uploaded once per plan: the tables the RPTQ link kernels read for
 * every row. Owns one device buffer until {@link #close()}.
 *
 * <pre>
 *  offset 0                 perm        (width) u16   channel at each plan position
 *  roundUp16(2 × width)     inversePerm (width) u16   plan position of each channel
 *  2 × roundUp16(2 × width) clusterEnds (clusters) i32 exclusive end position of each cluster
 * </pre>
 * 16-byte aligned tables take the kernels' vector loads.
 */
public final class DeviceClusterPlan implements AutoCloseable {
    private final ClusterPlan plan;
    private final long inversePermOffset;
    private final long clusterEndsOffset;
    private final DeviceBuffer tables;

    private DeviceClusterPlan(ClusterPlan plan, long inversePermOffset, long clusterEndsOffset, DeviceBuffer tables) {
        this.plan = plan;
        this.inversePermOffset = inversePermOffset;
        this.clusterEndsOffset = clusterEndsOffset;
        this.tables = tables;
    }

    /** Uploads {@code plan}'s tables into the current context (a blocking copy: done once per plan). */
    public static DeviceClusterPlan upload(ClusterPlan plan) {
        int width = plan.width();
        if (width > LinkCodecKernels.MAX_RPTQ_WIDTH) {
            throw new IllegalArgumentException("the RPTQ link kernels index channels as u16: plan width " + width
                    + " exceeds " + LinkCodecKernels.MAX_RPTQ_WIDTH);
        }
        long tableBytes = roundUp16(2L * width);
        long inverseOffset = tableBytes;
        long endsOffset = 2 * tableBytes;
        long totalBytes = endsOffset + 4L * plan.clusters();
        int[] permutation = plan.permutation();
        int[] inverse = plan.inversePermutation();
        DeviceBuffer tables = DeviceBuffer.allocate(totalBytes);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(totalBytes, 16);
            for (int j = 0; j < width; j++) {
                host.setAtIndex(ValueLayout.JAVA_SHORT, j, (short) permutation[j]);
                host.set(ValueLayout.JAVA_SHORT, inverseOffset + 2L * j, (short) inverse[j]);
            }
            for (int c = 0; c < plan.clusters(); c++) {
                host.set(ValueLayout.JAVA_INT, endsOffset + 4L * c, plan.clusterEnd(c));
            }
            tables.copyFromHost(host);
        } catch (RuntimeException e) {
            tables.close();
            throw e;
        }
        return new DeviceClusterPlan(plan, inverseOffset, endsOffset, tables);
    }

    public ClusterPlan plan() {
        return plan;
    }

    public int width() {
        return plan.width();
    }

    public int clusters() {
        return plan.clusters();
    }

    public int fingerprint() {
        return plan.fingerprint();
    }

    /** (width) u16 on the device: the channel at each plan position. */
    public long permAddress() {
        return tables.address();
    }

    /** (width) u16 on the device: the plan position of each channel. */
    public long inversePermAddress() {
        return tables.address() + inversePermOffset;
    }

    /** (clusters) i32 on the device: exclusive end position of each cluster. */
    public long clusterEndsAddress() {
        return tables.address() + clusterEndsOffset;
    }

    @Override
    public void close() {
        tables.close();
    }

    private static long roundUp16(long bytes) {
        return (bytes + 15) / 16 * 16;
    }
}
