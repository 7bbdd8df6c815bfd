package io.bitrelay.deploy.bench;

import io.bitrelay.actors.gateway.GatewayActor;
import io.bitrelay.deploy.ModelOptions;
import io.bitrelay.deploy.cluster.CompletionClient;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.deploy.cluster.LocalClusterOptions;
import io.bitrelay.deploy.cluster.QuantizationOptions;
import io.bitrelay.runtime.model.opt.OptPresets;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The serving loop end to end: a local cluster, concurrent streaming completions through the gateway's HTTP API at
 * each concurrency, the clients' view (tokens/s, time to first token, time between tokens) next to the stages' own
 * (step time by phase from /metrics, and the gap a stage's step slot sat idle). Optionally the kernel-only bound
 * (bench gpu-layers for the same shape) and the transformers peer on the same checkpoint and prompts.
 */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Serving loop end to end: tokens/s, TTFT and TBT of concurrent streaming completions through a local "
                + "cluster, and where each stage's step time goes.")
public final class ServeBench implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    LocalClusterOptions clusterOptions;

    @Mixin
    QuantizationOptions quantizationOptions;

    @Option(names = "--concurrency", split = ",", defaultValue = "1,16,64",
            description = "Concurrent streaming completions per run, one run each (default: ${DEFAULT-VALUE}).")
    List<Integer> concurrency;

    @Option(names = "--prompt-tokens", defaultValue = "32", description = "Token ids per prompt, BOS included (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--max-tokens", defaultValue = "128",
            description = "Tokens per completion; requests ignore EOS, so each yields exactly this many (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--warmup-each", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Before each N, N untimed completions of the same length, so the run meets what a server that has "
                    + "been serving finds: prefill GEMM shapes tuned, decode graphs of every context the run reaches captured, "
                    + "KV caches of its size allocated for reuse. TTFT then measures serving, not first use (default: ${DEFAULT-VALUE}).")
    boolean warmupEach;

    @Option(names = "--warmup-requests", defaultValue = "2",
            description = "Untimed concurrent completions (8 tokens) before the runs (default: ${DEFAULT-VALUE}).")
    int warmupRequests;

    @Option(names = "--kernel-bound",
            description = "After the cluster closed: bench gpu-layers decode steps (graphs on) of the same shape at each "
                    + "concurrency, for the ratio kernel-bound / measured tokens/s; needs a cuda device and --preset (default: ${DEFAULT-VALUE}).")
    boolean kernelBound;

    @Option(names = "--peer",
            description = "Also run deploy/bench/peer_generate.py (transformers generate, FP16 on CUDA or FP32 on CPU) on the "
                    + "same checkpoint and prompts; skipped where torch/transformers do not import (default: ${DEFAULT-VALUE}).")
    boolean peer;

    @Option(names = "--start-timeout", defaultValue = "PT30M", description = "Longest wait for the cluster to serve (default: ${DEFAULT-VALUE}).")
    Duration startTimeout;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write every setting and result as JSON.")
    Path json;

    @Override
    public void run() {
        validate();
        Consumer<String> progress = line -> System.err.println("bitrelay: " + line);
        Path checkpoint = modelOptions.resolve();
        int prompts = concurrency.stream().mapToInt(Integer::intValue).max().orElseThrow();
        List<int[]> promptIds = BenchPrompts.of(checkpoint, prompts, promptTokens);
        List<ServeBenchResult.Row> rows = measure(checkpoint, promptIds, progress);
        ServeBenchResult result = new ServeBenchResult(settings(checkpoint), rows, kernelBound(progress),
                peer ? peer(checkpoint, promptIds, progress) : new TransformersPeer.Result(Map.of(), null, null));
        System.out.println();
        result.print(System.out);
        if (json != null) {
            result.writeJson(json);
            System.out.println("\nwrote " + json);
        }
    }

    private void validate() {
        if (concurrency.isEmpty() || concurrency.stream().anyMatch(n -> n < 1)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--concurrency takes counts >= 1, got " + concurrency);
        }
        if (promptTokens < 2) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--prompt-tokens must be >= 2 (BOS and one more), got " + promptTokens);
        }
        if (maxTokens < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--max-tokens must be >= 1, got " + maxTokens);
        }
        if (warmupRequests < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--warmup-requests must be >= 0, got " + warmupRequests);
        }
    }

    /** Starts the cluster, warms it up, then one load run per concurrency with a /metrics scrape either side. */
    private List<ServeBenchResult.Row> measure(Path checkpoint, List<int[]> prompts, Consumer<String> progress) {
        LocalCluster.Options options = clusterOptions.toOptions(checkpoint, 0,
                quantizationOptions.settings(QuantizationOptions.defaultStore(checkpoint)), startTimeout);
        List<ServeBenchResult.Row> rows = new ArrayList<>();
        try (LocalCluster cluster = LocalCluster.start(options, progress)) {
            try (ClusterShutdownHook _ = new ClusterShutdownHook(cluster, "bitrelay-serve-bench-shutdown")) {
                ServeLoad load = new ServeLoad(cluster.httpAddress());
                CompletionClient metrics = new CompletionClient(cluster.httpAddress());
                if (warmupRequests > 0) {
                    ServeLoad.Result warmup = load.run(prompts, warmupRequests, Math.min(8, maxTokens));
                    if (warmup.failures() > 0) {
                        throw new IllegalStateException("the warm-up failed: " + warmup.errors());
                    }
                    progress.accept("warm-up: " + warmupRequests + " completions");
                }
                StagePhaseScrape before = warmupEach ? null : scrapeSettled(metrics);
                for (int n : concurrency) {
                    if (warmupEach) {
                        ServeLoad.Result warmup = load.run(prompts, n, maxTokens);
                        if (warmup.failures() > 0) {
                            throw new IllegalStateException("the warm-up at N=" + n + " failed: " + warmup.errors());
                        }
                        before = scrapeSettled(metrics);
                    }
                    ServeLoad.Result result = load.run(prompts, n, maxTokens);
                    progress.accept(String.format("N=%d: %d tokens in %.2f s = %.1f tokens/s, %d failed", n, result.tokens(),
                            result.wallSeconds(), result.tokensPerSecond(), result.failures()));
                    StagePhaseScrape after = scrapeSettled(metrics);
                    rows.add(new ServeBenchResult.Row(result, after.since(before, result.wallSeconds()),
                            after.firstTokens().since(before.firstTokens())));
                    before = after;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return rows;
    }

    /**
     * /metrics once it reflects every step so far: the gateway refreshes the stages' counters every
     * {@link GatewayActor#STATS_INTERVAL}, so after two intervals a collection that began after the last step
     * has been published.
     */
    private static StagePhaseScrape scrapeSettled(CompletionClient gateway) {
        try {
            Thread.sleep(GatewayActor.STATS_INTERVAL.multipliedBy(2).plusMillis(500));
            return StagePhaseScrape.parse(gateway.get("/metrics"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot scrape the gateway's /metrics: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for /metrics", e);
        }
    }

    private KernelBound.Result kernelBound(Consumer<String> progress) {
        if (!kernelBound) {
            return new KernelBound.Result(Map.of(), null, null);
        }
        String cuda = clusterOptions.devices.stream().filter(d -> d.startsWith("cuda")).findFirst().orElse(null);
        if (cuda == null) {
            return KernelBound.Result.skipped("--kernel-bound needs a cuda device in --devices (got "
                    + String.join(",", clusterOptions.devices) + "); skipped");
        }
        String preset = modelOptions.preset();
        if (preset == null) {
            return KernelBound.Result.skipped("--kernel-bound needs --preset (bench gpu-layers builds preset shapes), not --model; skipped");
        }
        int layers = modelOptions.layers() > 0 ? modelOptions.layers() : OptPresets.get(preset).numLayers();
        int device = cuda.contains(":") ? Integer.parseInt(cuda.substring(cuda.indexOf(':') + 1)) : 0;
        progress.accept("kernel bound: bench gpu-layers --preset " + preset + " --layers " + layers + " on cuda:" + device);
        return KernelBound.measure(preset, layers, quantizationRecipe(), concurrency, promptTokens + maxTokens / 2, device);
    }

    private String quantizationRecipe() {
        Object recipe = quantizationOptions.settings(null).get("bitrelay.quantization.recipe");
        return recipe == null ? null : recipe.toString();
    }

    private TransformersPeer.Result peer(Path checkpoint, List<int[]> prompts, Consumer<String> progress) {
        progress.accept("transformers peer: deploy/bench/peer_generate.py");
        boolean cuda = clusterOptions.devices.stream().anyMatch(d -> d.startsWith("cuda"));
        return TransformersPeer.run(checkpoint, prompts, concurrency, maxTokens, cuda);
    }

    private Map<String, Object> settings(Path checkpoint) {
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("checkpoint", checkpoint.toAbsolutePath().toString());
        settings.put("preset", modelOptions.preset());
        settings.put("layers", modelOptions.layers());
        settings.put("workers", clusterOptions.workers);
        settings.put("devices", String.join(",", clusterOptions.devices));
        settings.put("linkCodec", clusterOptions.linkCodec);
        settings.put("recipe", quantizationRecipe());
        settings.put("sets", clusterOptions.sets);
        settings.put("concurrency", concurrency);
        settings.put("promptTokens", promptTokens);
        settings.put("maxTokens", maxTokens);
        settings.put("warmupRequests", warmupRequests);
        settings.put("warmupEach", warmupEach);
        settings.put("os", System.getProperty("os.name"));
        settings.put("cores", Runtime.getRuntime().availableProcessors());
        settings.put("java", Runtime.version().toString());
        return settings;
    }
}
