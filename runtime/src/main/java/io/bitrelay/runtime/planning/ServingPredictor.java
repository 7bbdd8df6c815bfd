package io.bitrelay.runtime.planning;

import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.placement.LayerPlacement;
import io.bitrelay.runtime.placement.StagePlan;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkFrame;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Predicts steady-state decode of a pipeline from first principles: each stage streams its weights from
 * device memory once per micro-batch (or is bound by tensor-core throughput, whichever is slower) and reads
 * its KV cache; each link carries one frame per micro-batch, sized by the real wire format of the chosen
 * codec ({@link LinkFrame#frameBytes}); micro-batches circulate as the scheduler runs them (one per stage,
 * sequences spread evenly). Throughput is the smaller of what the round trip allows and what the busiest
 * stage or link can carry. Prefill is not modelled.
 */
public final class ServingPredictor {
    /** Share of each device kept free of weights, as the placement does on a real cluster. */
    public static final double RESERVE_FRACTION = 0.10;
    /** KV cache entries are FP16 on the GPU backend. */
    private static final int KV_BYTES_PER_VALUE = 2;

    private ServingPredictor() {
    }

    public static List<StagePlan> place(OptConfig config, ClusterShape cluster, WeightFormat format) {
        List<Long> capacities = Collections.nCopies(cluster.devices(), cluster.device().memoryBytes());
        return LayerPlacement.plan(config, capacities, format.bytesPerParameter(), RESERVE_FRACTION);
    }

    public static ServingPrediction predict(OptConfig config, ClusterShape cluster, WeightFormat format, LinkCodec codec,
                                            Workload workload, Efficiency efficiency) {
        List<StagePlan> stages = place(config, cluster, format);
        int stageCount = stages.size();
        int microBatches = workload.microBatches() > 0 ? workload.microBatches() : stageCount;
        microBatches = Math.min(microBatches, workload.sequences());
        int perBatch = (workload.sequences() + microBatches - 1) / microBatches;
        DeviceProfile device = cluster.device();
        double memoryRate = device.memoryBytesPerSecond() * efficiency.memory();
        long layerBytes = (long) Math.ceil(config.layerParameters() * format.bytesPerParameter());
        long headParameters = (long) config.vocabSize() * config.wordEmbedProjDim();
        long kvBytesPerTokenPerLayer = 2L * config.hiddenSize() * KV_BYTES_PER_VALUE;

        int[] nodes = new int[stageCount];
        double[] stageSeconds = new double[stageCount];
        long kvTokensFit = Long.MAX_VALUE;
        for (int s = 0; s < stageCount; s++) {
            StagePlan stage = stages.get(s);
            nodes[s] = cluster.nodeOf(stage.device());
            boolean last = s == stageCount - 1;
            double weightBytes = (double) stage.layers() * layerBytes + (last ? headParameters * 2.0 : 0);
            double layerOps = 2.0 * stage.layers() * config.layerParameters() * perBatch;
            double headOps = last ? 2.0 * headParameters * perBatch : 0;
            double computeSeconds = layerOps / (format.int8Math() ? device.int8OpsPerSecond() : device.fp16FlopsPerSecond())
                    / efficiency.compute() + headOps / device.fp16FlopsPerSecond() / efficiency.compute();
            double kvSeconds = (double) perBatch * workload.contextTokens() * stage.layers() * kvBytesPerTokenPerLayer / memoryRate;
            stageSeconds[s] = Math.max(weightBytes / memoryRate, computeSeconds) + kvSeconds
                    + stage.layers() * efficiency.layerOverheadSeconds();
            long free = stage.capacityBytes() - stage.weightBytes();
            kvTokensFit = Math.min(kvTokensFit, free / Math.max(1, (long) stage.layers() * kvBytesPerTokenPerLayer));
        }

        List<double[]> linkTimes = new ArrayList<>();
        long frameBytes = LinkFrame.frameBytes(codec, perBatch * BatchLayout.ENTRY_BYTES, perBatch, config.hiddenSize());
        double roundTrip = cluster.linkLatencySeconds(); // the sampled tokens going back to the coordinator
        double busiest = 0;
        String bottleneck = "round trip";
        for (int s = 0; s < stageCount; s++) {
            roundTrip += stageSeconds[s];
            if (stageSeconds[s] > busiest) {
                busiest = stageSeconds[s];
                bottleneck = "stage " + s;
            }
        }
        for (int s = 0; s + 1 < stageCount; s++) {
            boolean crosses = nodes[s] != nodes[s + 1];
            double rate = crosses ? cluster.interNodeBytesPerSecond() : cluster.intraNodeBytesPerSecond();
            double transfer = frameBytes / rate;
            roundTrip += cluster.linkLatencySeconds() + transfer;
            linkTimes.add(new double[]{transfer, rate, crosses ? 1 : 0});
            if (transfer > busiest) {
                busiest = transfer;
                bottleneck = "link " + s + "→" + (s + 1);
            }
        }
        double roundTripRate = (double) workload.sequences() / roundTrip;
        double pipelineRate = perBatch / busiest;
        double tokensPerSecond = Math.min(roundTripRate, pipelineRate);
        if (roundTripRate <= pipelineRate) {
            bottleneck = "round trip";
        }
        double secondsPerToken = workload.sequences() / tokensPerSecond;

        List<ServingPrediction.LinkLoad> links = new ArrayList<>();
        for (int s = 0; s < linkTimes.size(); s++) {
            double[] t = linkTimes.get(s);
            double bytesPerToken = (double) frameBytes / perBatch;
            links.add(new ServingPrediction.LinkLoad(s, s + 1, frameBytes, bytesPerToken,
                    cluster.linkLatencySeconds() + t[0], t[1], tokensPerSecond * bytesPerToken / t[1], t[2] == 1));
        }
        return new ServingPrediction(stages, nodes, stageSeconds, links, microBatches, perBatch, roundTrip,
                tokensPerSecond, secondsPerToken, bottleneck, kvTokensFit);
    }
}
