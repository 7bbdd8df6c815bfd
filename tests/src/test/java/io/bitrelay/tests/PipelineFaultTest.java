package io.bitrelay.tests;

import io.bitrelay.actors.coordinator.FinishReason;
import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.coordinator.StatsAggregator;
import io.bitrelay.actors.gateway.TokenListener;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.actors.dataplane.Link;
import io.bitrelay.actors.dataplane.LinkPublisher;
import io.bitrelay.actors.dataplane.MediaDriverHost;
import io.bitrelay.deploy.cluster.CompletionClient;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.LinkFrameKeys;
import io.bitrelay.runtime.wire.LinkProtection;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrameWriter;
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
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Corrupt frames between stages and malformed HTTP requests each get their clear error, and the cluster
 * keeps serving afterwards. Its links are encrypted (encrypt-links = on), so the forged, replayed and tampered frames
 * here are refused on an encrypted link; the other cluster tests serve over authenticated links (the default).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class PipelineFaultTest {
    private static final int MAX_IN_FLIGHT = 3;
    /** Two sequences run, one waits: the gateway's bound (3) and the coordinator's (2 + 1) are both reached. */
    private static final int MAX_ACTIVE = 2;
    private static final int MAX_WAITING = 1;

    @TempDir
    static Path temp;
    static LocalCluster cluster;
    static CompletionClient client;

    @BeforeAll
    static void startCluster() throws Exception {
        Path checkpoint = ClusterFixture.writeModel(temp.resolve("model"));
        cluster = ClusterFixture.start(checkpoint, "int8", temp.resolve("logs"),
                Map.of("bitrelay.worker.allow-fault-injection", "on", "bitrelay.coordinator.step-timeout", "20s",
                        "bitrelay.gateway.max-in-flight", MAX_IN_FLIGHT, "bitrelay.security.encrypt-links", "on",
                        "bitrelay.coordinator.max-active-sequences", MAX_ACTIVE, "bitrelay.coordinator.max-waiting", MAX_WAITING));
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

    /**
     * Issue 16 in cluster mode. Two streamed clients run and a non-streamed one waits in the coordinator's queue: beyond
     * max-in-flight the gateway answers 429 with Retry-After (nothing reaches the coordinator), and a job from another
     * way in (a second gateway) is refused by the coordinator's own bound, max-waiting. Then every client hangs up,
     * streamed or not: the coordinator ends up with nothing running or queued for them, long before their max_tokens
     * would have ended them.
     */
    @Test
    @Order(4)
    @Timeout(120)
    void shouldRefuseBeyondBothBoundsAndFreeEverySequenceOfClientsThatHungUp() throws Exception {
        List<Socket> clients = new ArrayList<>();
        try {
            for (int i = 0; i < MAX_ACTIVE; i++) {
                Socket stream = send(LONG_ANSWER.replace("}", ", \"stream\": true}"));
                clients.add(stream);
                awaitFirstEvent(stream); // running: it holds one of the two sequence slots
            }
            clients.add(send(LONG_ANSWER));
            awaitCoordinator(status -> status.active() == MAX_ACTIVE && status.waiting() == MAX_WAITING,
                    "two requests run and one waits in the coordinator");

            CompletionClient.Response refused = client.post("/v1/completions", LONG_ANSWER);
            assertEquals(429, refused.status(), refused.body().toString());
            assertTrue(refused.error().contains("bitrelay.gateway.max-in-flight"), refused.error());

            CompletableFuture<String> overloaded = new CompletableFuture<>();
            cluster.node().backend().submit(new GenerationJob("second-gateway", new int[]{2, 100, 101}, 8,
                    SamplingParams.greedy(), false), new Outcomes(overloaded));
            assertEquals("overloaded", overloaded.get(30, TimeUnit.SECONDS).split(":")[0]);
            assertTrue(overloaded.get().contains("bitrelay.coordinator.max-waiting"), overloaded.get());
        } finally {
            for (Socket socket : clients) {
                socket.close();
            }
        }
        long hungUp = System.nanoTime();
        awaitCoordinator(status -> status.active() == 0 && status.waiting() == 0, "the coordinator frees every gone client's sequence");
        System.out.printf("coordinator empty %d ms after %d clients (%d streamed) hung up%n", (System.nanoTime() - hungUp) / 1_000_000,
                clients.size(), MAX_ACTIVE);
        String metrics = client.get("/metrics");
        assertTrue(metrics.contains("bitrelay_gateway_requests_total{outcome=\"cancelled\"} " + clients.size() + ".0"), metrics);
        assertServes();
    }

    /**
     * Requests past their deadline fail with the key named and free their sequences at once, running or queued: two
     * jobs of 250 tokens and one queued behind them, each given 0.5 s (this pipeline needs several seconds for 250).
     */
    @Test
    @Order(5)
    @Timeout(60)
    void shouldFailAndFreeRequestsPastTheirDeadline() throws Exception {
        List<CompletableFuture<String>> outcomes = new ArrayList<>();
        for (int i = 0; i < MAX_ACTIVE + MAX_WAITING; i++) {
            CompletableFuture<String> outcome = new CompletableFuture<>();
            cluster.node().backend().submit(new GenerationJob("deadline-" + i, new int[]{2, 100 + i, 101}, 250,
                    SamplingParams.greedy(), false), new Outcomes(outcome), Duration.ofMillis(500));
            outcomes.add(outcome);
        }
        List<String> ended = new ArrayList<>();
        for (CompletableFuture<String> outcome : outcomes) {
            ended.add(outcome.get(30, TimeUnit.SECONDS));
        }
        long failed = System.nanoTime();
        for (String outcome : ended) {
            assertTrue(outcome.startsWith("deadline:") && outcome.contains("bitrelay.coordinator.request-deadline"), ended.toString());
        }
        assertEquals(MAX_ACTIVE, ended.stream().filter(o -> o.contains("did not finish")).count(), ended.toString());
        assertEquals(MAX_WAITING, ended.stream().filter(o -> o.contains("did not start")).count(), ended.toString());
        awaitCoordinator(status -> status.active() == 0 && status.waiting() == 0, "the coordinator frees the expired sequences");
        System.out.printf("coordinator empty %d ms after the deadline failures%n", (System.nanoTime() - failed) / 1_000_000);
        assertServes();
    }

    private static final String LONG_ANSWER = "{\"prompt\": \"a long answer nobody waits for\", \"max_tokens\": 200,"
            + " \"temperature\": 0, \"ignore_eos\": true}";

    /** A raw client: the request sent, the socket left open until the test closes it. */
    private static Socket send(String json) throws Exception {
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        Socket socket = new Socket(cluster.httpAddress().getHostString(), cluster.httpAddress().getPort());
        socket.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        socket.getOutputStream().write(body);
        socket.getOutputStream().flush();
        return socket;
    }

    private static void awaitFirstEvent(Socket stream) throws Exception {
        stream.setSoTimeout(60_000);
        BufferedReader in = new BufferedReader(new InputStreamReader(stream.getInputStream(), StandardCharsets.UTF_8));
        String line;
        do {
            line = in.readLine();
        } while (line != null && !line.startsWith("data: "));
        assertTrue(line != null, "the stream ended before its first event");
    }

    /** Completes with how a job ended: "finished:REASON", "failed:…", "unavailable:…", "overloaded:…" or "deadline:…". */
    private record Outcomes(CompletableFuture<String> outcome) implements TokenListener {
        @Override
        public void onToken(int tokenId) {
        }

        @Override
        public void onFinished(FinishReason reason) {
            outcome.complete("finished:" + reason);
        }

        @Override
        public void onFailed(String reason) {
            outcome.complete("failed:" + reason);
        }

        @Override
        public void onUnavailable(String reason) {
            outcome.complete("unavailable:" + reason);
        }

        @Override
        public void onOverloaded(String reason) {
            outcome.complete("overloaded:" + reason);
        }

        @Override
        public void onDeadline(String reason) {
            outcome.complete("deadline:" + reason);
        }
    }

    @Test
    @Order(6)
    @Timeout(120)
    void shouldRejectEveryForgedTamperedAndReplayedFrameAndServeTheGenuineOnes() throws Exception {
        String prompt = "forged frames ride along with this one";
        CompletionClient.Response reference = client.complete(prompt, 4, 0, 0);
        assertEquals(200, reference.status(), reference.body().toString());
        // injected beside genuine frames: a tampered copy with its CRC recomputed (sent first), and a replayed copy
        for (Map.Entry<String, String> fault : Map.of("forge", "BAD_TAG", "replay", "REPLAYED").entrySet()) {
            long before = cluster.stats().stages()[1].rejectedFrames();
            cluster.injectFault(0, fault.getKey());
            Thread.sleep(300); // the fault reaches stage 0 before the request's first micro-batch
            CompletionClient.Response served = client.complete(prompt, 4, 0, 0);
            assertEquals(200, served.status(), fault.getKey() + ": " + served.body());
            assertEquals(reference.text(), served.text(), fault.getKey() + ": the genuine frame's tokens");
            StageStatsView stage = awaitRejected(before + 1);
            assertEquals(before + 1, stage.rejected(), fault.getKey() + " counted once");
            assertTrue(stage.lastRejection().contains(fault.getValue()), fault.getKey() + ": " + stage.lastRejection());
        }
        // well-formed frames with a correct CRC from outside the pipeline: unsealed, and sealed under another key
        long before = cluster.stats().stages()[1].rejectedFrames();
        int forged = 0;
        try (MediaDriverHost rogue = MediaDriverHost.start(MediaDriverHost.Settings.defaults()
                .withAeronDirectory(cluster.aeronDirectory()).withMode(MediaDriverHost.DriverMode.EXTERNAL));
             LinkPublisher publisher = new LinkPublisher(rogue.aeron(), new Link(0, 1, "aeron:ipc", 1001),
                     LinkPublisher.Settings.defaults().withPublishTimeoutMillis(5_000));
             Arena arena = Arena.ofConfined()) {
            int width = ClusterFixture.MODEL.hiddenSize();
            MemorySegment rows = arena.allocate((long) width * Float.BYTES);
            MemorySegment buffer = arena.allocate(64 * 1024);
            for (int i = 0; i < 10; i++) {
                for (LinkFrameWriter writer : new LinkFrameWriter[]{new LinkFrameWriter(),
                        new LinkFrameWriter().sealWith(LinkProtection.ENCRYPTED.newSeal(LinkFrameKeys.newPipelineKey(), 0, 1))}) {
                    rows.set(ValueLayout.JAVA_FLOAT, 4L * i, i);
                    long length = writer.wrap(buffer).batchId(1 + i).step(i).stages(0, 1)
                            .encode(LinkCodecs.forName("int8"), new BatchLayout(java.util.List.of(BatchLayout.Entry.of(i, 1, 3))),
                                    rows, 1, width);
                    publisher.publish(buffer.asSlice(0, length));
                    forged++;
                }
            }
        }
        StageStatsView stage = awaitRejected(before + forged);
        assertEquals(before + forged, stage.rejected(), "every forged frame rejected and counted: " + stage.lastRejection());
        assertTrue(stage.lastRejection().contains("BAD_TAG"), stage.lastRejection());
        assertServes();
    }

    private record StageStatsView(long rejected, String lastRejection) {
    }

    /** Stage 1's rejected frames once they reach {@code count} (or after 10 s), and its last rejection. */
    private static StageStatsView awaitRejected(long count) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (true) {
            io.bitrelay.actors.worker.StageStats stage = cluster.stats().stages()[1];
            if (stage.rejectedFrames() >= count || System.nanoTime() > deadline) {
                return new StageStatsView(stage.rejectedFrames(), String.valueOf(stage.lastRejection()));
            }
            Thread.sleep(100);
        }
    }

    /** Polls the coordinator's status as the gateway sees it (refreshed every 0.5 s). */
    private static void awaitCoordinator(java.util.function.Predicate<io.bitrelay.actors.coordinator.Coordinator.Status> condition,
                                         String what) throws InterruptedException {
        long deadline = System.nanoTime() + java.time.Duration.ofSeconds(60).toNanos();
        while (true) {
            io.bitrelay.actors.coordinator.Coordinator.Status status = cluster.node().backend().status();
            if (status != null && condition.test(status)) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("never happened: " + what + "; last status " + status);
            }
            Thread.sleep(50);
        }
    }
}
