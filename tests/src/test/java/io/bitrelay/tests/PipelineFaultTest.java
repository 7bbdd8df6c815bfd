package io.bitrelay.tests;

import io.bitrelay.actors.coordinator.StatsAggregator;
import io.bitrelay.actors.dataplane.Link;
import io.bitrelay.actors.dataplane.LinkPublisher;
import io.bitrelay.actors.dataplane.MediaDriverHost;
import io.bitrelay.deploy.cluster.CompletionClient;
import io.bitrelay.deploy.cluster.LocalCluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Corrupt frames between stages and malformed HTTP requests each get their clear error, and the cluster
 * keeps serving afterwards.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class PipelineFaultTest {
    @TempDir
    static Path temp;
    static LocalCluster cluster;
    static CompletionClient client;

    @BeforeAll
    static void startCluster() throws Exception {
        Path checkpoint = ClusterFixture.writeModel(temp.resolve("model"));
        cluster = ClusterFixture.start(checkpoint, "int8", temp.resolve("logs"),
                Map.of("bitrelay.worker.allow-fault-injection", "on", "bitrelay.coordinator.step-timeout", "20s"));
        client = new CompletionClient(cluster.httpAddress());
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) {
            cluster.close();
        }
    }

    private static void assertServes() throws Exception {
        CompletionClient.Response ok = client.complete("still serving?", 4, 0, 0);
        assertEquals(200, ok.status(), ok.body().toString());
        assertEquals(4, ok.completionTokens());
    }

    @Test
    @Order(1)
    @Timeout(120)
    void shouldFailTheRequestWhoseFrameWasCorruptedAndKeepServing() throws Exception {
        Map<String, String> expected = Map.of("flip", "BAD_CRC", "truncate", "TRUNCATED", "version", "BAD_VERSION");
        for (Map.Entry<String, String> fault : expected.entrySet()) {
            cluster.injectFault(0, fault.getKey());
            Thread.sleep(300); // the fault reaches stage 0 before the request's first micro-batch
            CompletionClient.Response failed = client.complete("this frame will be " + fault.getKey(), 4, 0, 0);
            assertEquals(500, failed.status(), failed.body().toString());
            assertTrue(failed.error().contains(fault.getValue()), "error for " + fault.getKey() + ": " + failed.error());
            assertServes();
        }
        StatsAggregator.PipelineStats stats = cluster.stats();
        assertEquals(3, stats.stages()[1].rejectedFrames(), "stage 1 rejected exactly the three corrupted frames");
    }

    @Test
    @Order(2)
    @Timeout(120)
    void shouldRejectForeignFramesOnALinkWithoutHarmingLaterRequests() throws Exception {
        long before = cluster.stats().stages()[1].rejectedFrames();
        try (MediaDriverHost rogue = MediaDriverHost.start(MediaDriverHost.Settings.defaults()
                .withAeronDirectory(cluster.aeronDirectory()).withMode(MediaDriverHost.DriverMode.EXTERNAL));
             LinkPublisher publisher = new LinkPublisher(rogue.aeron(), new Link(0, 1, "aeron:ipc", 1001),
                     LinkPublisher.Settings.defaults().withPublishTimeoutMillis(5_000));
             Arena arena = Arena.ofConfined()) {
            SplittableRandom random = new SplittableRandom(5);
            for (int size : new int[]{7, 100, 4096}) {
                MemorySegment garbage = arena.allocate(size);
                for (int i = 0; i < size; i++) {
                    garbage.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
                }
                publisher.publish(garbage);
            }
        }
        long deadline = System.nanoTime() + 10_000_000_000L;
        long rejected = before;
        while (System.nanoTime() < deadline && rejected < before + 3) {
            Thread.sleep(100);
            rejected = cluster.stats().stages()[1].rejectedFrames();
        }
        assertEquals(before + 3, rejected, "stage 1 rejected the three foreign frames: " + cluster.stats().stages()[1].lastRejection());
        assertServes();
    }

    @Test
    @Order(3)
    @Timeout(60)
    void shouldAnswerMalformedRequestsWith400AndKeepServing() throws Exception {
        String[][] cases = {
                {"{\"prompt\": \"hi\", \"max_tokens\": ", "JSON"},
                {"{\"prompt\": \"\", \"max_tokens\": 4}", "prompt"},
                {"{\"prompt\": \"hi\", \"max_tokens\": \"four\"}", "max_tokens"},
                {"{\"prompt\": \"hi\", \"max_tokens\": 100000}", "context"},
                {"{\"prompt\": [1, -2], \"max_tokens\": 4}", "token id"},
                {"{\"prompt\": [[1], [2]], \"max_tokens\": 4}", "arrays of prompts"},
        };
        for (String[] c : cases) {
            CompletionClient.Response response = client.post("/v1/completions", c[0]);
            assertEquals(400, response.status(), c[0] + " → " + response.body());
            assertTrue(response.error().toLowerCase().contains(c[1].toLowerCase()), c[0] + " → " + response.error());
        }
        assertServes();
    }
}
