package io.bitrelay.tests;

import io.bitrelay.deploy.EndpointPerplexity;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.eval.Perplexity;
import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.eval.TokenWindows;
import io.bitrelay.runtime.model.opt.OptModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Perplexity through a cluster's HTTP API (prompt scoring: token ids, echo, max_tokens 0, logprobs), two
 * worker JVMs linked by FP16 frames, against the in-process evaluation of the same windows. The scheduler
 * may put at most 100 tokens in a micro-batch, so each 256-token window is scored in three chunks.
 */
class ClusterPerplexityTest {
    private static final int WINDOW = 256;
    private static final int WINDOWS = 3;

    @TempDir
    static Path temp;

    @Test
    @Timeout(300)
    void shouldGiveTheInProcessPerplexityThroughTheGateway() throws Exception {
        Path checkpoint = ClusterFixture.writeModel(temp.resolve("model"));
        int[] text = new SplittableRandom(4).ints(WINDOW * WINDOWS, 4, ClusterFixture.MODEL.vocabSize()).toArray();
        Perplexity.Result inProcess;
        try (OptModel model = OptModel.load(checkpoint)) {
            inProcess = Perplexity.evaluate(model, text, WINDOW, WINDOWS, Progress.NONE);
        }
        Map<String, Object> settings = Map.of("bitrelay.coordinator.max-batch-tokens", 100);
        try (LocalCluster cluster = LocalCluster.start(new LocalCluster.Options(checkpoint, 2, "fp16", 0, 1,
                temp.resolve("logs"), settings, Duration.ofMinutes(3)), line -> System.out.println("[cluster] " + line))) {
            var address = cluster.httpAddress();
            EndpointPerplexity client = new EndpointPerplexity(URI.create("http://127.0.0.1:" + address.getPort()),
                    Duration.ofMinutes(2));
            EndpointPerplexity.Served served = client.served();
            assertEquals("2", served.details().get("stages"), served.toString());
            assertEquals("fp16", served.details().get("link_codec"));
            List<int[]> windows = TokenWindows.split(text, WINDOW, WINDOWS);
            Perplexity.Result throughCluster = client.evaluate(served.model(), windows, 2, Progress.NONE);
            System.out.printf("in-process %.6f, through the cluster (%s) %.6f%n", inProcess.perplexity(), served.label(),
                    throughCluster.perplexity());
            assertEquals(inProcess.predictedTokens(), throughCluster.predictedTokens());
            assertEquals(inProcess.perplexity(), throughCluster.perplexity(), 1e-4 * inProcess.perplexity());
            assertEquals(0, cluster.status().active(), "every scored sequence left the scheduler");
            // The stages free a finished sequence's caches on a message that may trail the HTTP answer a little.
            long deadline = System.nanoTime() + 10_000_000_000L;
            int cached;
            do {
                var stages = cluster.stats().stages();
                assertEquals(2, stages.length);
                cached = java.util.Arrays.stream(stages).mapToInt(s -> s.cachedSequences()).sum();
            } while (cached > 0 && System.nanoTime() < deadline && sleep());
            assertEquals(0, cached, "the stages freed the scored windows' KV caches");
        }
    }

    private static boolean sleep() {
        try {
            Thread.sleep(200);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
