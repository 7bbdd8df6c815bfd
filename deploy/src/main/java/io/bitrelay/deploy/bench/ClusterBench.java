package io.bitrelay.deploy.bench;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.deploy.ModelOptions;
import io.bitrelay.deploy.cluster.BandwidthReport;
import io.bitrelay.deploy.cluster.CompletionClient;
import io.bitrelay.deploy.cluster.LocalCluster;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;

/**
 * Tokens/s of a local cluster (coordinator + gateway here, worker JVMs around it) with FP16 and INT8
 * links, on loopback (Aeron IPC) and, with {@code --shaped-rate}, with the middle worker behind a
 * rate-limited veth link (Aeron UDP through tc tbf both ways). Every ratio compares runs of this one
 * invocation: same machine, same load, same requests.
 *
 * <p>Choosing the rate: opt-125m's FP16 rows are 1.56 KB per token per link, and with prompts and the
 * traffic around the frames (headers, Aeron status messages, Pekko) the shaper counts ≈ 2.9-3.4 KB per
 * generated token each way. A 2-core machine makes ≈ 30-45 tokens/s CPU-bound, which FP16 would need
 * ≈ 0.7-1 Mbit/s for; at 400kbit FP16 is capped near 17 tokens/s (the link is its bottleneck) and INT8,
 * at half the bytes, near 34 (about the CPU bound).
 */
@Command(name = "cluster", mixinStandardHelpOptions = true,
        description = "Tokens/s of a local cluster with FP16 vs INT8 links, on loopback and (--shaped-rate) over a rate-limited link.")
public final class ClusterBench implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--codecs", split = ",", defaultValue = "fp16,int8", description = "Link codecs to compare; fp16 first is the baseline (default: ${DEFAULT-VALUE}).")
    List<String> codecs;

    @Option(names = "--workers", defaultValue = "3", description = "Worker JVMs (default: ${DEFAULT-VALUE}).")
    int workers;

    @Option(names = "--requests", defaultValue = "8", description = "Concurrent completions timed per run (default: ${DEFAULT-VALUE}).")
    int requests;

    @Option(names = "--max-tokens", defaultValue = "32", description = "Tokens per completion (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--warmup-requests", defaultValue = "2", description = "Untimed completions (8 tokens) before timing (default: ${DEFAULT-VALUE}).")
    int warmupRequests;

    @Option(names = "--shaped-rate", paramLabel = "RATE", description = "Also run with worker-2 behind a veth link shaped to RATE both ways (tc units, e.g. 400kbit); needs root.")
    String shapedRate;

    @Option(names = "--shaped-burst", defaultValue = "4kb", description = "tbf bucket, bytes sent at line rate (default: ${DEFAULT-VALUE}).")
    String shapedBurst;

    @Option(names = "--shaped-limit", defaultValue = "256kb", description = "tbf queue before drops; keep it above Aeron's 128 KiB receiver window (default: ${DEFAULT-VALUE}).")
    String shapedLimit;

    @Option(names = "--shaped-worker", defaultValue = "2", description = "Which worker (1-based) runs in the namespace; a middle one puts two links on the shaped veth (default: ${DEFAULT-VALUE}).")
    int shapedWorker;

    @Option(names = "--shaped-script", paramLabel = "FILE", description = "The namespace/veth/tc script (default: deploy/bench/shaped-link.sh of this build).")
    Path shapedScript;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Option(names = "--logs", defaultValue = "target/bitrelay-logs/cluster-bench", description = "Worker logs (default: ${DEFAULT-VALUE}).")
    Path logs;

    private volatile LocalCluster running;   // closed by the shutdown hook on Ctrl-C
    private volatile ShapedLink shapedLink;  // torn down by the shutdown hook on Ctrl-C

    @Override
    public void run() {
        if (codecs.isEmpty() || !codecs.getFirst().equals("fp16")) {
            throw new IllegalArgumentException("--codecs must start with fp16, the baseline of every ratio, got " + codecs);
        }
        if (shapedRate != null && (shapedWorker < 1 || shapedWorker > workers)) {
            throw new IllegalArgumentException("--shaped-worker must be in 1.." + workers + ", got " + shapedWorker);
        }
        Path checkpoint = modelOptions.resolve();
        Consumer<String> progress = line -> System.err.println("bitrelay: " + line);
        Thread hook = new Thread(this::cleanUp, "bitrelay-cluster-bench-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        List<ClusterBenchResult.Run> runs = new ArrayList<>();
        RuntimeException shapedFailure = null;
        try {
            for (String codec : codecs) {
                runs.add(measure(checkpoint, codec, null, progress));
            }
            if (shapedRate != null) {
                // A failure here still prints the loopback runs above, then fails the command with its reason.
                try {
                    runShaped(checkpoint, runs, progress);
                } catch (RuntimeException e) {
                    shapedFailure = e;
                    progress.accept("the shaped runs failed: " + e.getMessage());
                }
            }
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running or has run: it cleans up
            }
        }
        ClusterBenchResult result = new ClusterBenchResult(checkpoint.getFileName().toString(), workers, requests, maxTokens,
                Runtime.getRuntime().availableProcessors(), runs.stream().allMatch(r -> r.shapers().isEmpty()) ? null
                : new ShapedLink.Shape(shapedRate, shapedBurst, shapedLimit), runs);
        System.out.println();
        result.print(System.out);
        if (json != null) {
            try {
                result.writeJson(json);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            System.out.println("\nwrote " + json);
        }
        if (shapedFailure != null) {
            throw new IllegalStateException("the shaped runs failed (loopback results above): " + shapedFailure.getMessage(),
                    shapedFailure);
        }
    }

    private void runShaped(Path checkpoint, List<ClusterBenchResult.Run> runs, Consumer<String> progress) {
        ShapedLink.Shape shape = new ShapedLink.Shape(shapedRate, shapedBurst, shapedLimit);
        try (ShapedLink link = ShapedLink.setUp(shapedScript != null ? shapedScript : BenchScripts.find("shaped-link.sh"), shape, progress)) {
            shapedLink = link;
            for (String codec : codecs) {
                runs.add(measure(checkpoint, codec, link, progress));
            }
        } finally {
            shapedLink = null;
        }
        progress.accept("shaped link torn down");
    }

    private ClusterBenchResult.Run measure(Path checkpoint, String codec, ShapedLink link, Consumer<String> progress) {
        String network = link == null ? "loopback" : "shaped " + link.shape().rate();
        progress.accept("---- " + codec + " links, " + network + " ----");
        LocalCluster.Options options = new LocalCluster.Options(checkpoint, workers, codec, 0, 0,
                logs.resolve(codec + "-" + (link == null ? "loopback" : "shaped")), Map.of(), Duration.ofMinutes(3),
                link == null ? null : link.worker(shapedWorker));
        try (LocalCluster cluster = LocalCluster.start(options, progress)) {
            running = cluster;
            String pipeline = describePipeline(cluster.status());
            progress.accept("pipeline: " + pipeline);
            if (link != null && !pipeline.contains("worker-" + shapedWorker + "@" + ShapedLink.NAMESPACE_HOST)) {
                throw new IllegalStateException("worker-" + shapedWorker + " is not on " + ShapedLink.NAMESPACE_HOST + ": " + pipeline);
            }
            CompletionClient client = new CompletionClient(cluster.httpAddress());
            List<CompletionClient.Response> warmup = sendAll(client, warmupRequests, Math.min(8, maxTokens));
            progress.accept("warm-up: " + warmup.size() + " completions");
            BandwidthReport before = cluster.bandwidthReport();
            List<ShapedLink.ShaperCount> shapersBefore = link == null ? null : link.counts();
            long start = System.nanoTime();
            List<CompletionClient.Response> answers = sendAll(client, requests, maxTokens);
            double seconds = (System.nanoTime() - start) / 1e9;
            BandwidthReport after = cluster.bandwidthReport();
            List<ShapedLink.ShaperCount> shapers = link == null ? List.of() : List.of(
                    link.counts().get(0).minus(shapersBefore.get(0)), link.counts().get(1).minus(shapersBefore.get(1)));
            ClusterBenchResult.Run run = ClusterBenchResult.Run.of(codec, network, link == null ? -1 : link.shape().bitsPerSecond(),
                    pipeline, answers, seconds, before, after, shapers);
            progress.accept(String.format("%s, %s: %d tokens in %.1f s = %.2f tokens/s", codec, network, run.tokens(), seconds,
                    run.tokensPerSecond()));
            return run;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            running = null;
        }
    }

    /** stage0 worker-1@host → stage1 worker-2@host → …, as the coordinator placed them. */
    private static String describePipeline(Coordinator.Status status) {
        if (status == null) {
            throw new IllegalStateException("the coordinator did not answer a status request");
        }
        List<String> stages = new ArrayList<>();
        for (Coordinator.StageView stage : status.stages()) {
            stages.add("stage" + stage.stage() + " " + stage.workerId() + "@" + stage.host());
        }
        return String.join(" → ", stages);
    }

    /** {@code count} greedy completions sent at once; fails on the first answer that is not a completion. */
    private static List<CompletionClient.Response> sendAll(CompletionClient client, int count, int tokens) {
        List<CompletionClient.Response> answers = client.completeAll(CompletionClient.SAMPLE_PROMPTS, count, tokens);
        for (CompletionClient.Response answer : answers) {
            if (answer.status() != 200) {
                throw new IllegalStateException("a completion failed with HTTP " + answer.status() + ": " + answer.error());
            }
        }
        return answers;
    }

    /** Ctrl-C: stop the workers (one may sit in the namespace) before the namespace goes. */
    private void cleanUp() {
        LocalCluster cluster = running;
        if (cluster != null) {
            cluster.close();
        }
        ShapedLink link = shapedLink;
        if (link != null) {
            link.close();
        }
    }
}
