package io.bitrelay.deploy.cluster;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.coordinator.StatsAggregator;
import io.bitrelay.actors.worker.StageStats;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the inter-stage links carried, per link and in total, next to what FP16 links would have carried
 * for the same frames (the FP16 baseline is computed per frame, headers included, not assumed).
 */
public record BandwidthReport(List<Link> links, long wireBytes, long fp16WireBytes) {

    public record Link(String from, String to, String codec, long frames, long tokens, long payloadBytes, long wireBytes,
                       long fp16WireBytes) {
        public double bytesPerToken() {
            return tokens == 0 ? 0 : (double) wireBytes / tokens;
        }

        public double ratioVsFp16() {
            return wireBytes == 0 ? 0 : (double) fp16WireBytes / wireBytes;
        }
    }

    public static BandwidthReport of(StatsAggregator.PipelineStats stats, Coordinator.Status status) {
        List<Link> links = new ArrayList<>();
        long wire = 0;
        long fp16 = 0;
        for (StageStats stage : stats.stages()) {
            if (stage == null || stage.outbound() == null) {
                continue;
            }
            StageStats.LinkCounters c = stage.outbound();
            links.add(new Link(name(status, c.fromStage()), name(status, c.toStage()), c.codec(), c.frames(), c.tokens(),
                    c.payloadBytes(), c.wireBytes(), c.fp16WireBytes()));
            wire += c.wireBytes();
            fp16 += c.fp16WireBytes();
        }
        return new BandwidthReport(links, wire, fp16);
    }

    private static String name(Coordinator.Status status, int stage) {
        for (Coordinator.StageView view : status.stages()) {
            if (view.stage() == stage) {
                return "stage" + stage + "@" + view.workerId();
            }
        }
        return "stage" + stage;
    }

    public double savingsRatio() {
        return wireBytes == 0 ? 0 : (double) fp16WireBytes / wireBytes;
    }

    public void print(PrintStream out) {
        out.println("| link | codec | frames | tokens | payload B | wire B | B/token | FP16 wire B | FP16 B/token | ratio vs FP16 |");
        out.println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (Link link : links) {
            out.printf("| %s → %s | %s | %d | %d | %d | %d | %.1f | %d | %.1f | %.3f× |%n", link.from(), link.to(), link.codec(),
                    link.frames(), link.tokens(), link.payloadBytes(), link.wireBytes(), link.bytesPerToken(),
                    link.fp16WireBytes(), link.tokens() == 0 ? 0.0 : (double) link.fp16WireBytes() / link.tokens(), link.ratioVsFp16());
        }
        out.printf("| **all links** | | | | | %d | | %d | | **%.3f×** |%n", wireBytes, fp16WireBytes, savingsRatio());
    }

    public void writeJson(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        ArrayNode array = root.putArray("links");
        for (Link link : links) {
            array.addObject().put("from", link.from()).put("to", link.to()).put("codec", link.codec())
                    .put("frames", link.frames()).put("tokens", link.tokens()).put("payloadBytes", link.payloadBytes())
                    .put("wireBytes", link.wireBytes()).put("fp16WireBytes", link.fp16WireBytes())
                    .put("bytesPerToken", link.bytesPerToken()).put("ratioVsFp16", link.ratioVsFp16());
        }
        root.put("wireBytes", wireBytes);
        root.put("fp16WireBytes", fp16WireBytes);
        root.put("savingsRatio", savingsRatio());
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Files.writeString(file, json.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n");
    }
}
