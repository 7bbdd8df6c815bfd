package io.bitrelay.deploy.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.actors.worker.StepPhase;
import io.bitrelay.deploy.JsonFiles;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code bench serve} measured: one row per concurrency (the load as the clients saw it, and each stage's step
 * time by phase over that load), the kernel-only bound and the transformers peer where they ran.
 *
 * @param settings the command's settings, as written to the JSON
 */
record ServeBenchResult(Map<String, Object> settings, List<Row> rows, KernelBound.Result kernel, TransformersPeer.Result peer) {
    /** One concurrency: its load run, every stage's phases over it, and the coordinator's share of its first tokens. */
    record Row(ServeLoad.Result load, List<StagePhaseScrape.StageTime> stages, StagePhaseScrape.FirstTokenSplit firstTokens) {
        StagePhaseScrape.StageTime lastStage() {
            return stages.isEmpty() ? null : stages.getLast();
        }
    }

    void print(PrintStream out) {
        StringBuilder header = new StringBuilder(String.format("%5s %5s %5s %9s %9s %9s %8s %8s |",
                "N", "req", "fail", "tok/s", "TTFT p50", "TTFT p99", "TBT p50", "TBT p99"));
        for (StepPhase phase : StepPhase.values()) {
            header.append(String.format(" %7s", phase.label()));
        }
        header.append(String.format(" %7s %8s", "gap", "steps/s"));
        boolean kernelColumns = !kernel.steps().isEmpty();
        boolean peerColumns = !peer.tokensPerSecond().isEmpty();
        if (kernelColumns) {
            header.append(String.format(" | %9s %6s", "kern ms", "ratio"));
        }
        if (peerColumns) {
            header.append(String.format(" | %9s %6s", "hf tok/s", "ratio"));
        }
        String lastStage = rows.isEmpty() || rows.getFirst().lastStage() == null ? "?" : rows.getFirst().lastStage().stage();
        out.println("latencies in ms; phases, gap: ms per step of the last stage (" + lastStage + ")");
        out.println(header);
        for (Row row : rows) {
            ServeLoad.Result load = row.load();
            LatencyStats ttft = load.timeToFirstToken();
            LatencyStats tbt = load.timeBetweenTokens();
            StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%5d %5d %5d %9.1f %9s %9s %8s %8s |",
                    load.concurrency(), load.streams().size(), load.failures(), load.tokensPerSecond(),
                    ms(ttft.p50()), ms(ttft.p99()), ms(tbt.p50()), ms(tbt.p99())));
            StagePhaseScrape.StageTime last = row.lastStage();
            for (StepPhase phase : StepPhase.values()) {
                line.append(String.format(" %7s", last == null ? "-" : ms(last.msPerStep().get(phase.label()))));
            }
            line.append(String.format(Locale.ROOT, " %7s %8s", last == null ? "-" : ms(last.gapMs()),
                    last == null ? "-" : String.format(Locale.ROOT, "%.1f", last.stepsPerSecond())));
            if (kernelColumns) {
                KernelBound.Step step = kernel.steps().get(load.concurrency());
                line.append(step == null ? String.format(" | %9s %6s", "-", "-") : String.format(Locale.ROOT, " | %9.3f %6.2f",
                        step.msPerStep(), step.tokensPerSecond() / load.tokensPerSecond()));
            }
            if (peerColumns) {
                Double rate = peer.tokensPerSecond().get(load.concurrency());
                line.append(rate == null ? String.format(" | %9s %6s", "-", "-") : String.format(Locale.ROOT, " | %9.1f %6.2f",
                        rate, load.tokensPerSecond() / rate));
            }
            out.println(line);
        }
        for (Row row : rows) {
            for (String error : row.load().errors()) {
                out.println("N=" + row.load().concurrency() + " failed request: " + error);
            }
        }
        out.println();
        out.println("every stage, ms per step by phase:");
        for (Row row : rows) {
            for (StagePhaseScrape.StageTime stage : row.stages()) {
                StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "N=%-4d %-7s %7d steps %8.1f/s",
                        row.load().concurrency(), stage.stage(), stage.steps(), stage.stepsPerSecond()));
                stage.msPerStep().forEach((phase, ms) -> line.append(' ').append(phase).append(' ').append(ms(ms)));
                line.append(" gap ").append(ms(stage.gapMs()));
                out.println(line);
            }
        }
        out.println();
        out.println("time to first token, mean ms: waiting = queued in the coordinator until joining a batch; first step ="
                + " joined until the first token is back there; gateway = the rest of the gateway's own time to first token"
                + " (arrival → first token there); HTTP = the rest of the client's");
        for (Row row : rows) {
            StagePhaseScrape.FirstTokenSplit split = row.firstTokens();
            double mean = row.load().timeToFirstToken().mean();
            out.println(String.format(Locale.ROOT, "N=%-4d TTFT %s = waiting %s + first step %s + gateway %s + HTTP %s (%d requests)",
                    row.load().concurrency(), ms(mean), ms(split.waitingMs()), ms(split.firstStepMs()),
                    ms(split.gatewayMs() - split.waitingMs() - split.firstStepMs()), ms(mean - split.gatewayMs()),
                    split.requests()));
        }
        if (kernel.note() != null) {
            out.println("kernel bound: " + kernel.note());
        } else if (kernelColumns) {
            out.println("kern ms: bench gpu-layers decode step of every layer on one GPU (graphs on); ratio = its tok/s / measured tok/s");
        }
        if (peer.note() != null) {
            out.println("transformers: " + peer.note());
        } else if (peerColumns) {
            out.println("hf tok/s: transformers generate() on " + peer.raw().path("device").asText() + " ("
                    + peer.raw().path("dtype").asText() + "); ratio = bitrelay tok/s / transformers tok/s");
        }
    }

    void writeJson(Path file) {
        ObjectNode root = JsonFiles.mapper().createObjectNode();
        root.set("settings", JsonFiles.mapper().valueToTree(settings));
        ArrayNode results = root.putArray("results");
        for (Row row : rows) {
            ServeLoad.Result load = row.load();
            ObjectNode result = results.addObject();
            result.put("concurrency", load.concurrency());
            result.put("requests", load.streams().size());
            result.put("failures", load.failures());
            result.set("errors", JsonFiles.mapper().valueToTree(load.errors()));
            result.put("tokens", load.tokens());
            result.put("wallSeconds", load.wallSeconds());
            result.put("tokensPerSecond", load.tokensPerSecond());
            result.put("textEvents", load.streams().stream().mapToInt(ServeLoad.StreamResult::events).sum());
            result.set("ttftMs", JsonFiles.mapper().valueToTree(load.timeToFirstToken()));
            result.set("tbtMs", JsonFiles.mapper().valueToTree(load.timeBetweenTokens()));
            ObjectNode split = result.putObject("ttftSplitMs");
            split.put("requests", row.firstTokens().requests());
            split.put("waiting", row.firstTokens().waitingMs());
            split.put("firstStep", row.firstTokens().firstStepMs());
            split.put("gateway", row.firstTokens().gatewayMs() - row.firstTokens().waitingMs() - row.firstTokens().firstStepMs());
            split.put("http", load.timeToFirstToken().mean() - row.firstTokens().gatewayMs());
            ArrayNode stages = result.putArray("stages");
            for (StagePhaseScrape.StageTime stage : row.stages()) {
                ObjectNode node = stages.addObject();
                node.put("stage", stage.stage());
                node.put("steps", stage.steps());
                node.put("stepsPerSecond", stage.stepsPerSecond());
                node.set("msPerStep", JsonFiles.mapper().valueToTree(stage.msPerStep()));
                node.put("gapMs", stage.gapMs());
            }
            KernelBound.Step step = kernel.steps().get(load.concurrency());
            if (step != null) {
                result.put("kernelBoundMsPerStep", step.msPerStep());
                result.put("kernelBoundTokensPerSecond", step.tokensPerSecond());
                result.put("kernelBoundRatio", step.tokensPerSecond() / load.tokensPerSecond());
            }
            Double rate = peer.tokensPerSecond().get(load.concurrency());
            if (rate != null) {
                result.put("transformersTokensPerSecond", rate);
                result.put("transformersRatio", load.tokensPerSecond() / rate);
            }
        }
        root.set("kernelBound", section(kernel.note(), kernel.raw()));
        root.set("transformers", section(peer.note(), peer.raw()));
        JsonFiles.write(file, root);
    }

    private static JsonNode section(String note, JsonNode raw) {
        ObjectNode node = JsonFiles.mapper().createObjectNode();
        if (note != null) {
            node.put("note", note);
        }
        if (raw != null) {
            node.set("raw", raw);
        }
        return node;
    }

    private static String ms(Double value) {
        return value == null || value.isNaN() ? "-" : String.format(Locale.ROOT, value < 10 ? "%.2f" : "%.1f", value);
    }
}
