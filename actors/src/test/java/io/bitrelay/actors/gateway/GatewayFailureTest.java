package io.bitrelay.actors.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The gateway over a scripted backend: disconnects, backend failures, refusals, timeouts, stop-string cancels. */
@Timeout(60)
class GatewayFailureTest {
    private static final ServedModel MODEL = new ServedModel("scripted", 4096, 50272);

    @TempDir
    static Path temp;
    static ActorSystem<Void> system;
    static OptTokenizer tokenizer;
    ScriptedBackend backend;
    GatewayMetrics metrics;
    GatewayHttpServer server;
    HttpTestClient http;

    @BeforeAll
    static void startSystem() {
        tokenizer = OptTokenizer.load(TestModels.writeTiny(temp.resolve("tiny")));
        system = ActorSystem.create(Behaviors.empty(), "gateway-failure-test");
    }

    @AfterAll
    static void stopSystem() {
        system.terminate();
        tokenizer.close();
    }

    @BeforeEach
    void startServer() {
        backend = new ScriptedBackend();
        backend.script = Arrays.copyOfRange(tokenizer.encode("hello world"), 1, tokenizer.encode("hello world").length);
        startServer(GatewaySettings.defaults().withPort(0));
    }

    void startServer(GatewaySettings settings) {
        metrics = new GatewayMetrics(new PrometheusRegistry(), backend::queueDepth);
        server = new GatewayHttpServer(system, backend, tokenizer, MODEL, metrics, settings);
        http = new HttpTestClient(server.bind());
    }

    @AfterEach
    void stopServer() {
        server.close();
        backend.close();
    }

    private double metric(String series) {
        return GatewayHttpServerTest.metricValue(new String(metrics.scrapeText(), StandardCharsets.UTF_8), series);
    }

    private static void eventually(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("never happened: " + what);
            }
            Thread.sleep(10);
        }
    }

    @Test
    void shouldCancelTheJobWhenTheStreamingClientDisconnects() throws Exception {
        backend.tokenIntervalMillis = 20;
        InetSocketAddress address = server.address();
        String requestId;
        try (Socket socket = new Socket(address.getHostString(), address.getPort())) {
            byte[] body = "{\"prompt\":\"hi\",\"max_tokens\":3000,\"stream\":true}".getBytes(StandardCharsets.UTF_8);
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            String line;
            do {
                line = in.readLine();
            } while (line != null && !line.startsWith("data: "));
            assertTrue(line != null, "the stream ended before its first event");
            requestId = HttpTestClient.JSON.readTree(line.substring("data: ".length())).get("id").asText();
        }
        eventually(() -> backend.cancelled.contains(requestId), "the backend job is cancelled");
        eventually(() -> metric("bitrelay_gateway_requests_total{outcome=\"cancelled\"}") == 1, "counted as cancelled");
        assertEquals(0, metric("bitrelay_gateway_requests_in_flight"));
    }

    @Test
    void shouldCancelTheJobWhenANonStreamingClientDisconnects() throws Exception {
        server.close();
        startServer(GatewaySettings.defaults().withPort(0).withMaxInFlight(1));
        backend.mode = ScriptedBackend.Mode.SILENT;
        InetSocketAddress address = server.address();
        try (Socket socket = new Socket(address.getHostString(), address.getPort())) {
            byte[] body = "{\"prompt\":\"hi\",\"max_tokens\":3000}".getBytes(StandardCharsets.UTF_8);
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            eventually(() -> backend.submitted.size() == 1, "the job reaches the backend");
        }
        String requestId = backend.submitted.getFirst().requestId();
        eventually(() -> backend.cancelled.contains(requestId), "the backend job is cancelled");
        eventually(() -> metric("bitrelay_gateway_requests_total{outcome=\"cancelled\"}") == 1, "counted as cancelled");
        assertEquals(0, metric("bitrelay_gateway_requests_in_flight"));
        backend.mode = ScriptedBackend.Mode.TOKENS;
        HttpTestClient.Reply next = http.post("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":2}");
        assertEquals(200, next.status(), "the cancelled request gave its in-flight place back: " + next.body());
    }

    @Test
    void shouldAnswer429WithRetryAfterBeyondMaxInFlightAndAdmitAgainOnceOneEnds() throws Exception {
        server.close();
        startServer(GatewaySettings.defaults().withPort(0).withMaxInFlight(2));
        backend.mode = ScriptedBackend.Mode.SILENT;
        List<java.util.concurrent.CompletableFuture<HttpTestClient.Reply>> held = List.of(
                http.postAsync("/v1/completions", "{\"prompt\":\"one\"}"),
                http.postAsync("/v1/completions", "{\"prompt\":\"two\",\"stream\":true}"));
        eventually(() -> backend.submitted.size() == 2, "both jobs reach the backend");
        for (String stream : List.of("false", "true")) {
            HttpTestClient.Reply refused = http.post("/v1/completions", "{\"prompt\":\"three\",\"stream\":" + stream + "}");
            assertEquals(429, refused.status(), refused.body());
            assertEquals("1", refused.header("Retry-After"));
            JsonNode error = refused.json().get("error");
            assertTrue(error.get("message").asText().contains("bitrelay.gateway.max-in-flight"), refused.body());
            assertEquals("queue_full", error.get("code").asText());
        }
        assertEquals(2, backend.submitted.size(), "refused requests never reach the backend");
        assertEquals(2, metric("bitrelay_gateway_requests_total{outcome=\"rejected\"}"));

        backend.submitted.forEach(job -> backend.cancel(job.requestId())); // the backend ends both: places free again
        assertEquals(503, held.getFirst().join().status());
        assertTrue(held.get(1).join().events().getLast().equals("[DONE]"));
        eventually(() -> metric("bitrelay_gateway_requests_in_flight") == 0, "both ended");
        backend.mode = ScriptedBackend.Mode.TOKENS;
        assertEquals(200, http.post("/v1/completions", "{\"prompt\":\"four\",\"max_tokens\":2}").status());
    }

    @Test
    void shouldAnswer500WhenTheBackendFailsAndKeepServing() throws Exception {
        backend.mode = ScriptedBackend.Mode.FAIL_AFTER_TWO;
        HttpTestClient.Reply reply = http.post("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":10}");
        assertEquals(500, reply.status());
        JsonNode error = reply.json().get("error");
        assertEquals("server_error", error.get("type").asText());
        assertTrue(error.get("message").asText().contains("stage 3 lost"), reply.body());
        // counted as the session ends, which may come just after the answer went out
        eventually(() -> metric("bitrelay_gateway_requests_total{outcome=\"failed\"}") == 1, "counted as failed");

        backend.mode = ScriptedBackend.Mode.TOKENS;
        reply = http.post("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":" + backend.script.length + "}");
        assertEquals(200, reply.status());
        assertEquals("hello world", reply.json().get("choices").get(0).get("text").asText());
    }

    @Test
    void shouldSendAnErrorEventThenDoneWhenTheBackendFailsMidStream() throws Exception {
        backend.mode = ScriptedBackend.Mode.FAIL_AFTER_TWO;
        HttpTestClient.Reply reply = http.post("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":10,\"stream\":true}");
        assertEquals(200, reply.status());
        List<String> events = reply.events();
        assertEquals("[DONE]", events.getLast());
        JsonNode error = HttpTestClient.JSON.readTree(events.get(events.size() - 2)).get("error");
        assertTrue(error.get("message").asText().contains("stage 3 lost"), reply.body());
        StringBuilder text = new StringBuilder();
        for (String event : events.subList(0, events.size() - 2)) {
            text.append(HttpTestClient.JSON.readTree(event).get("choices").get(0).get("text").asText());
        }
        assertEquals(tokenizer.decode(Arrays.copyOf(backend.script, 2)), text.toString());
    }

    @Test
    void shouldAnswer503WithTheReasonWhenNoPipelineServedTheRequestInTime() throws Exception {
        backend.mode = ScriptedBackend.Mode.UNAVAILABLE;
        HttpTestClient.Reply reply = http.post("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":10}");
        assertEquals(503, reply.status(), reply.body());
        JsonNode error = reply.json().get("error");
        assertEquals("server_error", error.get("type").asText());
        assertTrue(error.get("message").asText().contains("no pipeline could serve"), reply.body());
        reply = http.post("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":10,\"stream\":true}");
        assertEquals("[DONE]", reply.events().getLast());
        assertTrue(reply.events().get(reply.events().size() - 2).contains("no pipeline could serve"), reply.body());
        assertEquals(2, metric("bitrelay_gateway_requests_total{outcome=\"rejected\"}"));
        assertEquals(0, metric("bitrelay_gateway_requests_in_flight"));
    }

    @Test
    void shouldAnswer429WhenTheBackendQueueIsFull() throws Exception {
        backend.mode = ScriptedBackend.Mode.REJECT;
        for (String stream : List.of("false", "true")) {
            HttpTestClient.Reply reply = http.post("/v1/completions", "{\"prompt\":\"hi\",\"stream\":" + stream + "}");
            assertEquals(429, reply.status(), reply.body());
            assertTrue(reply.json().get("error").get("message").asText().contains("already waiting"), reply.body());
        }
        assertEquals(2, metric("bitrelay_gateway_requests_total{outcome=\"rejected\"}"));
        assertEquals(0, metric("bitrelay_gateway_requests_in_flight"));
        assertEquals(3, metric("bitrelay_gateway_queue_depth"));
        assertEquals(List.of(), backend.submitted);
    }

    /**
     * The coordinator refuses after the gateway handed the job on (its queue is full): the client still gets a real
     * 429 with Retry-After in OpenAI's JSON, streamed or not — a stream's answer waits until the job is queued.
     */
    @Test
    void shouldAnswer429WithRetryAfterWhenTheCoordinatorsQueueIsFullStreamedOrNot() throws Exception {
        backend.mode = ScriptedBackend.Mode.OVERLOADED;
        for (String stream : List.of("false", "true")) {
            HttpTestClient.Reply reply = http.post("/v1/completions", "{\"prompt\":\"hi\",\"stream\":" + stream + "}");
            assertEquals(429, reply.status(), reply.body());
            assertTrue(reply.contentType().startsWith("application/json"), reply.contentType());
            assertEquals("1", reply.header("Retry-After"), "stream " + stream);
            JsonNode error = reply.json().get("error");
            assertEquals("queue_full", error.get("code").asText(), reply.body());
            assertEquals("server_overloaded", error.get("type").asText(), reply.body());
            assertTrue(error.get("message").asText().contains("coordinator's queue"), reply.body());
        }
        assertEquals(2, metric("bitrelay_gateway_requests_total{outcome=\"rejected\"}"));
        eventually(() -> metric("bitrelay_gateway_requests_in_flight") == 0, "both places given back");
        backend.mode = ScriptedBackend.Mode.TOKENS;
        assertEquals(200, http.post("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":2,\"stream\":true}").status());
    }

    /** The coordinator failed a job at its deadline (and freed its sequence): 504 naming why, or an error event mid-stream. */
    @Test
    void shouldAnswer504WhenTheCoordinatorsDeadlinePassed() throws Exception {
        backend.mode = ScriptedBackend.Mode.DEADLINE;
        HttpTestClient.Reply reply = http.post("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":10}");
        assertEquals(504, reply.status(), reply.body());
        assertEquals("timeout", reply.json().get("error").get("type").asText(), reply.body());
        assertTrue(reply.json().get("error").get("message").asText().contains("deadline"), reply.body());
        reply = http.post("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":10,\"stream\":true}");
        assertEquals(200, reply.status(), "the stream had started: " + reply.body());
        assertEquals("[DONE]", reply.events().getLast());
        assertTrue(reply.events().get(reply.events().size() - 2).contains("deadline"), reply.body());
        assertEquals(2, metric("bitrelay_gateway_requests_total{outcome=\"timeout\"}"));
        assertEquals(0, metric("bitrelay_gateway_requests_in_flight"));
    }

    @Test
    void shouldReportUnhealthyWhileTheBackendIsNotReady() throws Exception {
        backend.ready = false;
        HttpTestClient.Reply reply = http.get("/health");
        assertEquals(503, reply.status());
        backend.ready = true;
        assertEquals(200, http.get("/health").status());
    }

    @Test
    void shouldCancelTheJobWhenAStopStringIsSeen() throws Exception {
        HttpTestClient.Reply reply = http.post("/v1/completions",
                "{\"prompt\":\"hi\",\"max_tokens\":1000,\"stop\":\"o w\"}");
        assertEquals(200, reply.status());
        JsonNode choice = reply.json().get("choices").get(0);
        assertEquals("hell", choice.get("text").asText());
        assertEquals("stop", choice.get("finish_reason").asText());
        String id = reply.json().get("id").asText();
        eventually(() -> backend.cancelled.contains(id), "the backend job is cancelled");
    }

    @Test
    void shouldTimeOutAndCancelARequestThatTakesTooLong() throws Exception {
        server.close();
        startServer(GatewaySettings.defaults().withPort(0).withRequestTimeout(Duration.ofMillis(500)));
        backend.mode = ScriptedBackend.Mode.SILENT;
        HttpTestClient.Reply reply = http.post("/v1/completions", "{\"prompt\":\"hi\"}");
        assertEquals(504, reply.status(), reply.body());
        assertTrue(reply.json().get("error").get("message").asText().contains("request-timeout"), reply.body());
        String id = backend.submitted.getFirst().requestId();
        eventually(() -> backend.cancelled.contains(id), "the backend job is cancelled");
        assertEquals(1, metric("bitrelay_gateway_requests_total{outcome=\"timeout\"}"));
    }
}
