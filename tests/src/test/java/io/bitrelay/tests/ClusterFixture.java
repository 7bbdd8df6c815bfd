package io.bitrelay.tests;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.coordinator.FinishReason;

import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.gateway.TokenListener;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import io.bitrelay.runtime.tokenizer.OptTokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** A small model and helpers shared by the multi-JVM cluster tests. */
final class ClusterFixture {
    /** Hidden 768 as opt-125m (so link sizes are realistic), 3 layers (one per worker), a small vocabulary. */
    static final OptConfig MODEL = new OptConfig(1000, 768, 3, 12, 1536, 256, 768, true, false, true, 2, 2, 1, "float16");

    private ClusterFixture() {
    }

    static Path writeModel(Path directory) {
        return SyntheticCheckpointWriter.write(directory, MODEL, SyntheticOptions.defaults().withSeed(77).withOutliers(true));
    }

    static LocalCluster start(Path checkpoint, String codec, Path logs, Map<String, Object> settings) throws IOException {
        return LocalCluster.start(new LocalCluster.Options(checkpoint, 3, codec, 0, 1, logs, settings, Duration.ofMinutes(3)),
                line -> System.out.println("[cluster] " + line));
    }

    /**
     * As {@link #start}, with the coordinator singleton in a coordinator + gateway JVM of its own that seeds the cluster
     * ({@link LocalCluster#killCoordinator()} hands it over to this JVM's node).
     */
    static LocalCluster startWithLeadCoordinator(Path checkpoint, String codec, Path logs, Map<String, Object> settings)
            throws IOException {
        return LocalCluster.start(new LocalCluster.Options(checkpoint, 3, codec, 0, 1, logs, settings, Duration.ofMinutes(3),
                null, List.of("cpu")).withLeadCoordinator(), line -> System.out.println("[cluster] " + line));
    }

    /**
     * Never fewer stages than the three workers (min-workers = expected-workers): a false alarm while the JVMs start on
     * a loaded host takes a worker out, and a pipeline rebuilt over the two left would stay at two stages (it is not
     * spread again); with this the coordinator waits for the worker to be restarted instead.
     */
    static final Map<String, Object> THREE_STAGES = Map.of("bitrelay.coordinator.min-workers", 0);

    static Map<String, Object> with(Map<String, Object> settings, String key, Object value) {
        Map<String, Object> more = new java.util.HashMap<>(settings);
        more.put(key, value);
        return more;
    }

    /** Waits (up to 90 s) for a pipeline of three stages over three workers, serving: a start-up false alarm settled. */
    static void awaitThreeStages(LocalCluster cluster) throws InterruptedException {
        FailoverLoad.await(() -> {
            Coordinator.Status status = cluster.status();
            return status != null && status.serving() && status.stages().length == 3 && status.workers() == 3;
        }, "a pipeline of 3 stages serving over 3 workers", Duration.ofSeconds(90));
    }

    /** Stops a failover test's cluster and closes its tokenizer; either may be null (the start failed before it). */
    static void close(LocalCluster cluster, OptTokenizer tokenizer) {
        if (cluster != null) {
            cluster.close();
        }
        if (tokenizer != null) {
            tokenizer.close();
        }
    }

    /** Token ids the cluster generates for each prompt, submitted together (so they batch). */
    static List<int[]> generate(LocalCluster cluster, List<int[]> prompts, List<SamplingParams> sampling, int maxTokens)
            throws Exception {
        List<CompletableFuture<int[]>> futures = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            CompletableFuture<int[]> done = new CompletableFuture<>();
            List<Integer> tokens = new ArrayList<>();
            cluster.node().backend().submit(new GenerationJob("test-" + System.nanoTime() + "-" + i, prompts.get(i), maxTokens,
                    sampling.get(i), false), new TokenListener() {
                @Override
                public void onToken(int tokenId) {
                    tokens.add(tokenId);
                }

                @Override
                public void onFinished(FinishReason reason) {
                    done.complete(tokens.stream().mapToInt(Integer::intValue).toArray());
                }

                @Override
                public void onFailed(String reason) {
                    done.completeExceptionally(new IllegalStateException(reason));
                }
            });
            futures.add(done);
        }
        List<int[]> results = new ArrayList<>();
        for (CompletableFuture<int[]> future : futures) {
            results.add(future.get(3, TimeUnit.MINUTES));
        }
        return results;
    }

    /** The coordinator's status; it answers while a pipeline is rebuilt too. */
    static Coordinator.Status status(LocalCluster cluster) {
        Coordinator.Status status = cluster.status();
        if (status == null) {
            throw new IllegalStateException("the coordinator did not answer");
        }
        return status;
    }

    /** The worker of each stage, in pipeline order. */
    static List<String> stageWorkers(LocalCluster cluster) {
        return Arrays.stream(status(cluster).stages()).map(Coordinator.StageView::workerId).toList();
    }
}
