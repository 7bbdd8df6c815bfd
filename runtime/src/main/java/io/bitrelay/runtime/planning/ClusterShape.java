package io.bitrelay.runtime.planning;

/**
 * The hardware a model is planned onto: {@code nodes × gpusPerNode} identical devices, stages placed in
 * order (node 0's GPUs first), links between neighbouring stages inside a node or across nodes.
 *
 * @param intraNodeBytesPerSecond usable bandwidth of one stage-to-stage link inside a node (NVLink, PCIe)
 * @param interNodeBytesPerSecond usable bandwidth of one link between nodes (the NIC a stage uses)
 * @param linkLatencySeconds      one-way latency of a link hop, software included
 */
public record ClusterShape(int nodes, int gpusPerNode, DeviceProfile device, double intraNodeBytesPerSecond,
                           double interNodeBytesPerSecond, double linkLatencySeconds) {
    public ClusterShape {
        if (nodes < 1 || gpusPerNode < 1) {
            throw new IllegalArgumentException("a cluster needs at least one node with one GPU, got " + nodes + " × " + gpusPerNode);
        }
        if (!(intraNodeBytesPerSecond > 0) || !(interNodeBytesPerSecond > 0) || !(linkLatencySeconds >= 0)) {
            throw new IllegalArgumentException("link bandwidths must be positive and latency non-negative");
        }
    }

    public int devices() {
        return nodes * gpusPerNode;
    }

    public int nodeOf(int device) {
        return device / gpusPerNode;
    }
}
