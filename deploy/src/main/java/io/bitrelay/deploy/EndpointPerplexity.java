package io.bitrelay.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.eval.Perplexity;
import io.bitrelay.runtime.eval.Progress;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;

/**
 * Perplexity through a running OpenAI-compatible server, the way lm-evaluation-harness scores a model
 * behind one: each window goes as one {@code POST /v1/completions} with the window's token ids as the
 * prompt, {@code echo: true}, {@code max_tokens: 0} and {@code logprobs: 0}; the answer's
 * {@code token_logprobs} (null for the first token, which nothing predicts) are the log-likelihoods the
 * in-process {@link Perplexity} sums. A few windows are in flight at once, so a pipelined server keeps its
 * stages busy; the sum runs in window order, so the result does not depend on which answer comes first.
 */
public final class EndpointPerplexity {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What the server says it serves: its model id and the "bitrelay" details of /v1/models (recipe, links, …). */
    public record Served(String model, Map<String, String> details) {
        /** "w8a8-smoothquant calibrated, int4 links, 3 stages", or the model id when the server says nothing more. */
        public String label() {
            if (details.isEmpty()) {
                return model;
            }
            List<String> parts = new ArrayList<>();
            parts.add(details.getOrDefault("quantization", details.getOrDefault("backend", "?")));
            if (details.containsKey("link_codec")) {
                parts.add(details.get("link_codec") + " links");
            }
            if (details.containsKey("stages")) {
                parts.add(details.get("stages") + " stages");
            }
            if (details.containsKey("kv_cache") && !details.get("kv_cache").equals("fp32")) {
                parts.add("KV cache " + details.get("kv_cache"));
            }
            return String.join(", ", parts);
        }
    }

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private final URI base;
    private final Duration requestTimeout;

    /** @param endpoint the server's base URL, e.g. http://localhost:8080 (a trailing /v1 is accepted) */
    public EndpointPerplexity(URI endpoint, Duration requestTimeout) {
        String text = endpoint.toString().replaceAll("/+$", "").replaceAll("/v1$", "");
        if (!text.startsWith("http://") && !text.startsWith("https://")) {
            throw new IllegalArgumentException("--endpoint must be an http(s) URL such as http://localhost:8080, got " + endpoint);
        }
        this.base = URI.create(text);
        this.requestTimeout = requestTimeout;
    }

    public Served served() {
        JsonNode models = get("/v1/models");
        JsonNode entry = models.path("data").path(0);
        if (!entry.hasNonNull("id")) {
            throw new IllegalStateException(base + "/v1/models lists no model: " + models);
        }
        Map<String, String> details = new LinkedHashMap<>();
        entry.path("bitrelay").properties().forEach(e -> details.put(e.getKey(), e.getValue().asText()));
        return new Served(entry.get("id").asText(), details);
    }

    /** Scores every window (each from an empty cache on the server), at most {@code inFlight} at once. */
    public Perplexity.Result evaluate(String model, List<int[]> windows, int inFlight, Progress progress) {
        if (windows.isEmpty()) {
            throw new IllegalArgumentException("no windows to score");
        }
        if (inFlight < 1) {
            throw new IllegalArgumentException("--in-flight must be >= 1, got " + inFlight);
        }
        long start = System.nanoTime();
        Semaphore slots = new Semaphore(inFlight);
        List<CompletableFuture<Double>> nlls = new ArrayList<>();
        int[] done = {0};
        try {
            for (int[] window : windows) {
                slots.acquireUninterruptibly();
                CompletableFuture<Double> nll = http.sendAsync(scoringRequest(model, window), HttpResponse.BodyHandlers.ofString())
                        .thenApply(response -> windowNll(response, window))
                        .whenComplete((value, failure) -> {
                            slots.release();
                            synchronized (done) {
                                progress.update(++done[0], windows.size());
                            }
                        });
                nlls.add(nll);
            }
            double nll = 0;
            long predicted = 0;
            for (int i = 0; i < nlls.size(); i++) {
                nll += nlls.get(i).get();
                predicted += windows.get(i).length - 1;
            }
            double mean = nll / predicted;
            return new Perplexity.Result(Math.exp(mean), mean, windows.size(), predicted, (System.nanoTime() - start) / 1e9);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while scoring through " + base, e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw cause instanceof RuntimeException r ? r : new IllegalStateException(cause.getMessage(), cause);
        } finally {
            progress.finish();
        }
    }

    private HttpRequest scoringRequest(String model, int[] window) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", model);
        var prompt = body.putArray("prompt");
        for (int token : window) {
            prompt.add(token);
        }
        body.put("echo", true);
        body.put("max_tokens", 0);
        body.put("logprobs", 0);
        body.put("temperature", 0);
        return ClientApiKey.authorize(HttpRequest.newBuilder(base.resolve("/v1/completions"))).timeout(requestTimeout)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build();
    }

    /** −Σ token_logprobs[1..]; the answer must score exactly the window's tokens. */
    static double windowNll(HttpResponse<String> response, int[] window) {
        JsonNode body = parse(response.body(), response.uri());
        if (response.statusCode() != 200) {
            throw new IllegalStateException(response.uri() + " answered " + response.statusCode() + ": "
                    + body.path("error").path("message").asText(response.body()));
        }
        JsonNode logprobs = body.path("choices").path(0).path("logprobs").path("token_logprobs");
        if (!logprobs.isArray() || logprobs.size() != window.length) {
            throw new IllegalStateException("the server scored " + logprobs.size() + " tokens of a window of " + window.length
                    + " (is it an OpenAI-compatible server with echo + logprobs?)");
        }
        double nll = 0;
        for (int t = 1; t < window.length; t++) {
            JsonNode value = logprobs.get(t);
            if (!value.isNumber()) {
                throw new IllegalStateException("token_logprobs[" + t + "] is " + value + ", not a number");
            }
            nll -= value.doubleValue();
        }
        return nll;
    }

    private JsonNode get(String path) {
        try {
            HttpResponse<String> response = http.send(ClientApiKey.authorize(HttpRequest.newBuilder(base.resolve(path))).timeout(requestTimeout).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                throw new IllegalStateException(base.resolve(path) + " answered " + response.statusCode() + ": " + response.body());
            }
            return parse(response.body(), response.uri());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot reach " + base.resolve(path) + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    private static JsonNode parse(String body, URI from) {
        try {
            return JSON.readTree(body);
        } catch (IOException e) {
            throw new IllegalStateException(from + " answered with something that is not JSON: " + e.getMessage(), e);
        }
    }
}
