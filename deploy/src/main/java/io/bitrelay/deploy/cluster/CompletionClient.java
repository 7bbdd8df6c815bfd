package io.bitrelay.deploy.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** A small client of the gateway's OpenAI-compatible API, for the demo, benchmarks and tests. */
public final class CompletionClient {
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

    public Response post(String path, String body) throws IOException, InterruptedException {
        long start = System.nanoTime();
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(base.resolve(path))
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
        return http.send(HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(30)).GET().build(),
                HttpResponse.BodyHandlers.ofString()).body();
    }
}
