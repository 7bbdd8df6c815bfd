package io.bitrelay.deploy;

import io.bitrelay.deploy.cluster.BandwidthReport;
import io.bitrelay.deploy.cluster.CompletionClient;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.deploy.cluster.LocalClusterOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * The main job: a local cluster of worker JVMs serving the embedded model, a batch of requests through
 * the gateway's HTTP API, the answers, and what the inter-stage links carried next to FP16 links.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Start a local cluster (≥3 worker JVMs), send requests through the HTTP gateway, print the answers and the link bandwidth report.")
public final class DemoCommand implements Runnable {
    private static final List<String> PROMPTS = CompletionClient.SAMPLE_PROMPTS;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    LocalClusterOptions clusterOptions;

    @Mixin
    io.bitrelay.deploy.cluster.QuantizationOptions quantizationOptions;

    @Option(names = "--max-tokens", defaultValue = "24", description = "Tokens per answer (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the bandwidth report as JSON.")
    Path json;


    @Override
    public void run() {
        Path checkpoint = modelOptions.resolve();
        try (LocalCluster cluster = LocalCluster.start(clusterOptions.toOptions(checkpoint, 0,
                quantizationOptions.settings(io.bitrelay.deploy.cluster.QuantizationOptions.defaultStore(checkpoint)), Duration.ofMinutes(30)), line -> System.err.println("bitrelay: " + line))) {
            CompletionClient client = new CompletionClient(cluster.httpAddress());
            System.out.printf("%ncluster serving %s: %d workers on %s, %s links, gateway http://%s:%d%n", checkpoint.getFileName(),
                    clusterOptions.workers, String.join(",", clusterOptions.devices), clusterOptions.linkCodec,
                    cluster.httpAddress().getHostString(), cluster.httpAddress().getPort());
            System.out.println("synthetic weights are random: the text is noise; the bandwidth figures are what to read.");
            long start = System.nanoTime();
            List<CompletionClient.Response> answers = client.completeAll(PROMPTS, PROMPTS.size(), maxTokens);
            double seconds = (System.nanoTime() - start) / 1e9;
            int tokens = 0;
            for (int i = 0; i < PROMPTS.size(); i++) {
                CompletionClient.Response answer = answers.get(i);
                System.out.printf("%n> %s%n  %s%n", PROMPTS.get(i), answer.status() == 200
                        ? answer.text().replace("\n", "\\n") + "   [" + answer.finishReason() + ", " + answer.completionTokens() + " tokens]"
                        : "HTTP " + answer.status() + ": " + answer.error());
                tokens += answer.status() == 200 ? answer.completionTokens() : 0;
            }
            System.out.printf("%n%d requests, %d tokens in %.1f s: %.1f tokens/s through the pipeline%n%n", PROMPTS.size(), tokens,
                    seconds, tokens / seconds);
            BandwidthReport report = cluster.bandwidthReport();
            report.print(System.out);
            if (json != null) {
                report.writeJson(json);
                System.out.println("\nwrote " + json);
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
