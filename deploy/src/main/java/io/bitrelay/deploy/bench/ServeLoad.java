package io.bitrelay.deploy.bench;

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
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

/**
 * Drives a gateway with concurrent streaming completions, one virtual thread each, and times every stream as a
 * client sees it: the first text event and the gaps between text events. Requests are greedy with
 * {@code ignore_eos}, so each one should yield exactly max_tokens tokens; one that yields fewer counts as failed.
 */
public final class ServeLoad {
    private static final ObjectMapper JSON = new ObjectMapper();
    // HTTP/1.1: an HTTP/2 client would first try an h2c upgrade, which the gateway does not speak.
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();
    private final URI completions;

    public ServeLoad(InetSocketAddress gateway) {
        this.completions = URI.create("http://" + gateway.getHostString() + ":" + gateway.getPort() + "/v1/completions");
    }

    /**
     * One stream as the client saw it.
     *
     * @param tokens      completion tokens the usage chunk reported (0 if none came)
     * @param events      text events received; fewer than tokens when the detokenizer held bytes of a character back
     * @param firstNanos  send → first text event, or −1
     * @param gapsNanos   between consecutive text events
     * @param error       why the request failed, or null
     */
    public record StreamResult(int tokens, int events, long firstNanos, long[] gapsNanos, String error) {
        public boolean failed() {
            return error != null;
        }
    }

    /** One load run: {@code concurrency} streams sent at once. */
    public record Result(int concurrency, int maxTokens, double wallSeconds, List<StreamResult> streams) {
        public int tokens() {
            return streams.stream().filter(s -> !s.failed()).mapToInt(StreamResult::tokens).sum();
        }

        public long failures() {
            return streams.stream().filter(StreamResult::failed).count();
        }

        /** Tokens of the successful streams over the wall time from the first send to the last end. */
        public double tokensPerSecond() {
            return tokens() / wallSeconds;
        }

        public LatencyStats timeToFirstToken() {
            return LatencyStats.of(streams.stream().filter(s -> !s.failed() && s.firstNanos() >= 0)
                    .mapToDouble(s -> s.firstNanos() / 1e6).toArray());
        }

        /** Gaps of all successful streams pooled: every token gap counts once, whichever stream it came from. */
        public LatencyStats timeBetweenTokens() {
            return LatencyStats.of(streams.stream().filter(s -> !s.failed())
                    .flatMapToLong(s -> java.util.Arrays.stream(s.gapsNanos())).mapToDouble(g -> g / 1e6).toArray());
        }

        /** Distinct failure reasons, for the report. */
        public List<String> errors() {
            return streams.stream().filter(StreamResult::failed).map(StreamResult::error).distinct().toList();
        }
    }

    /** Sends {@code concurrency} completions at once, request i with prompt {@code prompts.get(i % size)}. */
    public Result run(List<int[]> prompts, int concurrency, int maxTokens) {
        List<StreamResult> streams = new ArrayList<>();
        long start = System.nanoTime();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<StreamResult>> futures = new ArrayList<>();
            for (int i = 0; i < concurrency; i++) {
                int[] prompt = prompts.get(i % prompts.size());
                futures.add(pool.submit(() -> stream(prompt, maxTokens)));
            }
            for (Future<StreamResult> future : futures) {
                streams.add(future.get());
            }
        } catch (Exception e) {
            throw new IllegalStateException("the load run was interrupted or its threads failed: " + e.getMessage(), e);
        }
        return new Result(concurrency, maxTokens, (System.nanoTime() - start) / 1e9, streams);
    }

    private StreamResult stream(int[] prompt, int maxTokens) {
        ObjectNode body = JSON.createObjectNode();
        body.putPOJO("prompt", prompt);
        body.put("max_tokens", maxTokens).put("temperature", 0).put("ignore_eos", true).put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        long sent = System.nanoTime();
        try {
            HttpResponse<Stream<String>> response = http.send(ClientApiKey.authorize(HttpRequest.newBuilder(completions))
                    .timeout(Duration.ofMinutes(10)).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body))).build(),
                    HttpResponse.BodyHandlers.ofLines());
            try (Stream<String> lines = response.body()) {
                if (response.statusCode() != 200) {
                    String text = String.join("\n", lines.toList());
                    return failed("HTTP " + response.statusCode() + ": " + errorMessage(text));
                }
                return readEvents(lines.iterator(), sent, maxTokens);
            }
        } catch (IOException e) {
            return failed("transport: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return failed("interrupted");
        }
    }

    private static StreamResult readEvents(Iterator<String> lines, long sent, int maxTokens) throws IOException {
        long first = -1;
        long previous = -1;
        List<Long> gaps = new ArrayList<>();
        int events = 0;
        int tokens = 0;
        String finishReason = null;
        boolean done = false;
        while (lines.hasNext()) {
            String line = lines.next();
            long now = System.nanoTime();
            if (!line.startsWith("data: ")) {
                continue;
            }
            String data = line.substring("data: ".length());
            if (data.equals("[DONE]")) {
                done = true;
                break;
            }
            JsonNode chunk = JSON.readTree(data);
            if (chunk.has("error")) {
                return failed("stream error: " + chunk.path("error").path("message").asText());
            }
            JsonNode choice = chunk.path("choices").path(0);
            if (!choice.path("text").asText("").isEmpty()) {
                events++;
                if (first < 0) {
                    first = now - sent;
                } else {
                    gaps.add(now - previous);
                }
                previous = now;
            }
            if (choice.hasNonNull("finish_reason")) {
                finishReason = choice.get("finish_reason").asText();
            }
            if (chunk.hasNonNull("usage")) {
                tokens = chunk.path("usage").path("completion_tokens").asInt();
            }
        }
        if (!done) {
            return failed("the stream ended without [DONE] after " + events + " events");
        }
        if (tokens != maxTokens) {
            return failed("got " + tokens + " of " + maxTokens + " tokens (finish_reason " + finishReason + ")");
        }
        return new StreamResult(tokens, events, first, gaps.stream().mapToLong(Long::longValue).toArray(), null);
    }

    private static String errorMessage(String body) {
        try {
            return JSON.readTree(body).path("error").path("message").asText(body);
        } catch (IOException e) {
            return body;
        }
    }

    private static StreamResult failed(String why) {
        return new StreamResult(0, 0, -1, new long[0], why);
    }
}
