package io.bitrelay.deploy.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.deploy.ClientApiKey;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/** A small client of the gateway's OpenAI-compatible API, for the demo, benchmarks and tests. */
public final class CompletionClient {
    /** Prompts the demo and the benchmarks send. */
    public static final List<String> SAMPLE_PROMPTS = List.of(
            "The capital of France is",
            "Quantized activations travel between pipeline stages because",
            "Once upon a time",
            "def fibonacci(n):",
            "The three laws of thermodynamics are",
            "In 1867 the harbour was rebuilt and",
            "A good pipeline keeps every stage busy by",
            "The weather tomorrow will be");
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private final URI base;

    public CompletionClient(InetSocketAddress gateway) {
        this.base = URI.create("http://" + gateway.getHostString() + ":" + gateway.getPort());
    }

    /** @param status HTTP status; {@code body} the parsed JSON answer */
    public record Response(int status, JsonNode body, long latencyNanos) {
        public String text() {
            return body.path("choices").path(0).path("text").asText();
        }

        public String finishReason() {
            return body.path("choices").path(0).path("finish_reason").asText();
        }

        public int completionTokens() {
            return body.path("usage").path("completion_tokens").asInt();
        }

        public String error() {
            return body.path("error").path("message").asText(null);
        }
    }

    public Response complete(String prompt, int maxTokens, double temperature, long seed) throws IOException, InterruptedException {
        ObjectNode request = JSON.createObjectNode();
        request.put("prompt", prompt).put("max_tokens", maxTokens).put("temperature", temperature).put("seed", seed);
        return post("/v1/completions", JSON.writeValueAsString(request));
    }

    /**
     * {@code count} greedy completions sent at once (cycling through {@code prompts}), answers in prompt order.
     * A transport failure fails the whole batch; HTTP errors come back as responses.
     */
    public List<Response> completeAll(List<String> prompts, int count, int maxTokens) {
        List<Response> answers = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Response>> futures = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                String prompt = prompts.get(i % prompts.size());
                futures.add(pool.submit(() -> complete(prompt, maxTokens, 0, 0)));
            }
            for (Future<Response> future : futures) {
                answers.add(future.get());
            }
        } catch (Exception e) {
            throw new IllegalStateException("completion requests failed: " + e.getMessage(), e);
        }
        return answers;
    }

    public Response post(String path, String body) throws IOException, InterruptedException {
        long start = System.nanoTime();
        HttpResponse<String> response = http.send(ClientApiKey.authorize(HttpRequest.newBuilder(base.resolve(path)))
                        .timeout(Duration.ofMinutes(5))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
        JsonNode parsed;
        try {
            parsed = JSON.readTree(response.body());
        } catch (IOException e) {
            parsed = JSON.createObjectNode().put("raw", response.body());
        }
        return new Response(response.statusCode(), parsed, System.nanoTime() - start);
    }

    public String get(String path) throws IOException, InterruptedException {
        return http.send(ClientApiKey.authorize(HttpRequest.newBuilder(base.resolve(path))).timeout(Duration.ofSeconds(30)).GET().build(),
                HttpResponse.BodyHandlers.ofString()).body();
    }
}
