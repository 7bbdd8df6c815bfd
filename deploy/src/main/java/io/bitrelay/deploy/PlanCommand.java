package io.bitrelay.deploy;

import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptPresets;
import io.bitrelay.runtime.placement.StagePlan;
import io.bitrelay.runtime.planning.Bandwidth;
import io.bitrelay.runtime.planning.ClusterShape;
import io.bitrelay.runtime.planning.DeviceProfile;
import io.bitrelay.runtime.planning.Efficiency;
import io.bitrelay.runtime.planning.ServingPrediction;
import io.bitrelay.runtime.planning.ServingPredictor;
import io.bitrelay.runtime.planning.WeightFormat;
import io.bitrelay.runtime.planning.Workload;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkCodecs;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;

/**
 * Capacity planning before buying or booking hardware: where the layers go, and what decode throughput,
 * latency and link load each link codec predicts.
 */
@Command(name = "plan", mixinStandardHelpOptions = true,
        description = "Plan a cluster for a model: placement, predicted decode tokens/s and link utilisation per link codec.")
public final class PlanCommand implements Runnable {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--preset", defaultValue = "opt-175b", description = "OPT shape (default: ${DEFAULT-VALUE}).")
    String preset;

    @Option(names = "--config", paramLabel = "FILE", description = "A checkpoint's config.json instead of --preset.")
    Path configJson;

    @Option(names = "--nodes", defaultValue = "2", description = "Nodes (default: ${DEFAULT-VALUE}).")
    int nodes;

    @Option(names = "--gpus-per-node", defaultValue = "8", description = "GPUs per node (default: ${DEFAULT-VALUE}).")
    int gpusPerNode;

    @Option(names = "--device", defaultValue = "h200", description = "h200, h100-80g or a100-80g (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--device-memory-gb", description = "Override the device's memory, GB.")
    Double deviceMemoryGb;

    @Option(names = "--weights", split = ",", defaultValue = "w8a8",
            description = "Weight formats to plan: fp16, w8a8, w4a16, w4a8 (default: ${DEFAULT-VALUE}).")
    List<String> weightFormats;

    @Option(names = "--codecs", split = ",", defaultValue = "fp16,int8,int4,int3",
            description = "Link codecs to compare (default: ${DEFAULT-VALUE}).")
    List<String> codecs;

    @Option(names = "--clusters", defaultValue = "8", description = "RPTQ clusters per link (default: ${DEFAULT-VALUE}).")
    int clusters;

    @Option(names = "--intra-node-rate", defaultValue = "50GB/s",
            description = "Stage-to-stage rate inside a node (default: ${DEFAULT-VALUE}: pinned host copies over PCIe, "
                    + "the path the Aeron data plane takes).")
    String intraNodeRate;

    @Option(names = "--inter-node-rate", defaultValue = "100gbit",
            description = "Stage-to-stage rate between nodes (default: ${DEFAULT-VALUE}).")
    String interNodeRate;

    @Option(names = "--link-latency-us", defaultValue = "30", description = "One-way link latency, µs (default: ${DEFAULT-VALUE}).")
    double linkLatencyMicros;

    @Option(names = "--sequences", defaultValue = "64", description = "Sequences decoding at once (default: ${DEFAULT-VALUE}).")
    int sequences;

    @Option(names = "--context", defaultValue = "512", description = "Average KV-cache length while decoding (default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--micro-batches", defaultValue = "0", description = "Micro-batches in flight; 0 = one per stage (default).")
    int microBatches;

    @Option(names = "--memory-efficiency", defaultValue = "0.8") double memoryEfficiency;
    @Option(names = "--compute-efficiency", defaultValue = "0.5") double computeEfficiency;
    @Option(names = "--layer-overhead-us", defaultValue = "20") double layerOverheadMicros;

    @Override
    public void run() {
        OptConfig config = configJson != null ? OptConfig.read(configJson) : OptPresets.get(preset);
        DeviceProfile profile = DeviceProfile.byName(device);
        if (deviceMemoryGb != null) {
            profile = profile.withMemoryBytes((long) (deviceMemoryGb * 1e9));
        }
        ClusterShape cluster = new ClusterShape(nodes, gpusPerNode, profile, Bandwidth.parse(intraNodeRate),
                Bandwidth.parse(interNodeRate), linkLatencyMicros * 1e-6);
        Workload workload = new Workload(sequences, context, microBatches);
        Efficiency efficiency = new Efficiency(memoryEfficiency, computeEfficiency, layerOverheadMicros * 1e-6);
        PrintWriter out = spec.commandLine().getOut();
        out.printf("%s: %d layers, hidden %d, ffn %d, %.1f B parameters%n", configJson != null ? configJson : preset,
                config.numLayers(), config.hiddenSize(), config.ffnDim(), totalParameters(config) / 1e9);
        out.printf("cluster: %d node(s) × %d %s (%.0f GB, %.2f TB/s); links %s inside a node, %s between nodes, %.0f µs%n",
                nodes, gpusPerNode, profile.name(), profile.memoryBytes() / 1e9, profile.memoryBytesPerSecond() / 1e12,
                Bandwidth.format(cluster.intraNodeBytesPerSecond()), Bandwidth.format(cluster.interNodeBytesPerSecond()),
                linkLatencyMicros);
        printFit(out, config, profile);
        for (String formatName : weightFormats) {
            WeightFormat format = WeightFormat.byName(formatName.trim());
            out.println();
            List<StagePlan> stages;
            try {
                stages = ServingPredictor.place(config, cluster, format);
            } catch (IllegalArgumentException doesNotFit) {
                out.printf("weights %s: does not fit: %s%n", format.name(), doesNotFit.getMessage());
                continue;
            }
            out.printf("weights %s (%.3f bytes/parameter): %d stages%n", format.name(), format.bytesPerParameter(), stages.size());
            printPlacement(out, config, cluster, format, workload, efficiency);
            printCodecs(out, config, cluster, format, workload, efficiency);
        }
        out.println();
        out.println("Decode steady state only (prefill not modelled); weights streamed once per micro-batch; frames sized by "
                + "the real wire format. Compare with a measured run: `bitrelay bench cluster` or the demo's report.");
        out.flush();
    }

    /** Memory per layer in each weight format, and how many layers (and GPUs for the model) that makes. */
    private static void printFit(PrintWriter out, OptConfig config, DeviceProfile profile) {
        out.println();
        out.printf("memory per decoder layer, and layers per %s (%.0f GB, %.0f %% kept for KV cache and scratch):%n",
                profile.name(), profile.memoryBytes() / 1e9, ServingPredictor.RESERVE_FRACTION * 100);
        out.println("| weights | GB / layer | layers / GPU | GPUs for all layers |");
        out.println("|---|---:|---:|---:|");
        for (WeightFormat format : WeightFormat.ALL) {
            double layerBytes = config.layerParameters() * format.bytesPerParameter();
            long perGpu = (long) (profile.memoryBytes() * (1 - ServingPredictor.RESERVE_FRACTION) / layerBytes);
            out.printf("| %s | %.3f | %d | %s |%n", format.name(), layerBytes / 1e9, perGpu,
                    perGpu == 0 ? "—" : Long.toString((config.numLayers() + perGpu - 1) / perGpu));
        }
    }

    private void printPlacement(PrintWriter out, OptConfig config, ClusterShape cluster, WeightFormat format,
                                Workload workload, Efficiency efficiency) {
        ServingPrediction p = ServingPredictor.predict(config, cluster, format, codec("fp16", config), workload, efficiency);
        out.println("| stage | node | gpu | layers | weights GB | stage ms / micro-batch |");
        out.println("|---:|---:|---:|---|---:|---:|");
        for (int s = 0; s < p.stages().size(); s++) {
            StagePlan stage = p.stages().get(s);
            out.printf("| %d | %d | %d | %d–%d (%d) | %.1f | %.3f |%n", s, p.stageNodes()[s],
                    stage.device() % cluster.gpusPerNode(), stage.firstLayer(), stage.endLayer() - 1, stage.layers(),
                    stage.weightBytes() / 1e9, p.stageSeconds()[s] * 1e3);
        }
        out.printf("KV cache (FP16): the tightest stage holds %,d tokens: %d sequences × %d context asked%s%n",
                p.kvTokensFit(), workload.sequences(), workload.contextTokens(),
                (long) workload.sequences() * workload.contextTokens() > p.kvTokensFit() ? " — DOES NOT FIT" : "");
    }

    private void printCodecs(PrintWriter out, OptConfig config, ClusterShape cluster, WeightFormat format,
                             Workload workload, Efficiency efficiency) {
        out.printf("decode, %d sequences, %d-token context:%n", workload.sequences(), workload.contextTokens());
        out.println("| link codec | bytes/token | vs fp16 | intra-node link use | inter-node link use | round trip ms | tokens/s | ms/token | bound by |");
        out.println("|---|---:|---:|---:|---:|---:|---:|---:|---|");
        Double fp16Bytes = null;
        for (String name : codecs) {
            ServingPrediction p = ServingPredictor.predict(config, cluster, format, codec(name.trim(), config), workload, efficiency);
            double bytesPerToken = p.links().isEmpty() ? 0 : p.links().getFirst().bytesPerToken();
            if (fp16Bytes == null && name.trim().equals("fp16")) {
                fp16Bytes = bytesPerToken;
            }
            double intra = p.links().stream().filter(l -> !l.crossesNodes()).mapToDouble(ServingPrediction.LinkLoad::utilisation).max().orElse(0);
            double inter = p.links().stream().filter(ServingPrediction.LinkLoad::crossesNodes).mapToDouble(ServingPrediction.LinkLoad::utilisation).max().orElse(0);
            out.printf("| %s | %.1f | %s | %.2f %% | %s | %.2f | %.1f | %.2f | %s (%d micro-batches of %d) |%n", name.trim(),
                    bytesPerToken, fp16Bytes == null || bytesPerToken == 0 ? "—" : String.format("%.2f×", fp16Bytes / bytesPerToken),
                    intra * 100, p.links().stream().anyMatch(ServingPrediction.LinkLoad::crossesNodes)
                            ? String.format("%.2f %%", inter * 100) : "—",
                    p.roundTripSeconds() * 1e3, p.tokensPerSecond(), p.secondsPerToken() * 1e3, p.bottleneck(),
                    p.microBatches(), p.tokensPerBatch());
        }
    }

    /** A codec of the right frame size: RPTQ frames depend on the cluster count only, not on which channels. */
    private LinkCodec codec(String name, OptConfig config) {
        CodecId id = CodecId.fromName(name);
        int width = config.hiddenSize();
        int k = Math.max(1, Math.min(clusters, width));
        int[] permutation = new int[width];
        int[] ends = new int[k];
        float[] min = new float[k];
        float[] max = new float[k];
        for (int i = 0; i < width; i++) {
            permutation[i] = i;
        }
        for (int c = 0; c < k; c++) {
            ends[c] = (int) ((long) width * (c + 1) / k);
            min[c] = -1f;
            max[c] = 1f;
        }
        return LinkCodecs.forId(id, new ClusterPlan(permutation, ends, min, max));
    }

    private static long totalParameters(OptConfig config) {
        return config.layerParameters() * config.numLayers() + (long) config.vocabSize() * config.wordEmbedProjDim()
                + (long) (config.maxPositions() + OptConfig.POSITION_OFFSET) * config.hiddenSize();
    }
}
