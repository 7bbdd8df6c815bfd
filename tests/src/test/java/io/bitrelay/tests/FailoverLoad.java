package io.bitrelay.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitrelay.actors.coordinator.FinishReason;
import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.gateway.TokenListener;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.generate.Sampler;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.tokenizer.OptTokenizer;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The load of the failover tests: greedy requests (some streamed over HTTP, some answered whole over HTTP, the others
 * submitted to the gateway's backend) whose tokens are checked against the single-process model's.
 */
final class FailoverLoad {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    final List<String> prompts = new ArrayList<>();
    final List<int[]> reference = new ArrayList<>();
    final int maxTokens;
    final int streamed;
    final int answeredWhole;
    private final OptTokenizer tokenizer;

    /** Prompts and their reference tokens from the model at {@code checkpoint}; none answered whole over HTTP. */
    FailoverLoad(Path checkpoint, OptTokenizer tokenizer, int requests, int streamed, int maxTokens) {
        this(checkpoint, tokenizer, requests, streamed, 0, maxTokens);
    }

    /**
     * @param streamed      the first requests, streamed over HTTP
     * @param answeredWhole the next ones, non-streaming completions over HTTP; the rest go to the backend
     */
    FailoverLoad(Path checkpoint, OptTokenizer tokenizer, int requests, int streamed, int answeredWhole, int maxTokens) {
        if (streamed + answeredWhole > requests) {
            throw new IllegalArgumentException(streamed + " streamed + " + answeredWhole + " answered whole > " + requests + " requests");
        }
        this.tokenizer = tokenizer;
        this.maxTokens = maxTokens;
        this.streamed = streamed;
        this.answeredWhole = answeredWhole;
        try (OptModel model = OptModel.load(checkpoint)) {
            for (int i = 0; i < requests; i++) {
                String prompt = "request " + i + ": " + "the pipeline keeps going ".repeat(1 + i % 4);
                prompts.add(prompt);
                reference.add(greedy(model, tokenizer.encode(prompt), maxTokens));
            }
        }
    }

    /** The single-process model's greedy tokens, EOS or not (the requests ignore EOS). */
    private static int[] greedy(OptModel model, int[] prompt, int count) {
        int[] tokens = new int[count];
        try (KvCache cache = model.newCache()) {
            int[] input = prompt;
            for (int i = 0; i < count; i++) {
                tokens[i] = Sampler.argmax(model.forward(List.of(new SequenceChunk(input, cache)), false)[0]);
                input = new int[]{tokens[i]};
            }
        }
        return tokens;
    }

    /** Sends every request at once. */
    List<Job> send(LocalCluster cluster) {
        List<Job> jobs = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            jobs.add(i < streamed ? streamed(cluster.httpAddress(), i) : i < streamed + answeredWhole
                    ? answeredWhole(cluster, i) : submitted(cluster, i));
        }
        return jobs;
    }

    /** Streams every request over HTTP to {@code gateway} at once. */
    List<Job> sendStreamedTo(java.net.InetSocketAddress gateway) {
        List<Job> jobs = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            jobs.add(streamed(gateway, i));
        }
        return jobs;
    }

    /** Request {@code index}'s whole reference answer as text. */
    String referenceText(int index) {
        return tokenizer.decode(reference.get(index));
    }

    /** Waits for every job, then checks that none failed and each has the reference's tokens. */
    void assertExact(List<Job> jobs) throws Exception {
        for (Job job : jobs) {
            job.done.get(60, TimeUnit.SECONDS);
        }
        for (int i = 0; i < jobs.size(); i++) {
            Job job = jobs.get(i);
            assertEquals(null, job.error, "request " + i + " failed");
            if (job.text != null) {
                assertEquals(tokenizer.decode(reference.get(i)), job.text.toString(),
                        (i < streamed ? "streamed" : "non-streaming") + " request " + i);
            } else {
                assertArrayEquals(reference.get(i), job.tokenIds(), "request " + i + ": " + prompts.get(i));
            }
        }
    }

    /** One request: submitted to the backend (token ids), or streamed over HTTP (text). */
    static final class Job {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        final List<Integer> ids = new CopyOnWriteArrayList<>();
        final List<Long> arrivals = new CopyOnWriteArrayList<>();
        /** What an HTTP client read (streamed or whole), null for a backend job. */
        StringBuilder text;
        volatile String error;
        /** A stream ended with data: [DONE] (not cut). */
        volatile boolean sawDone;

        int tokens() {
            return arrivals.size();
        }

        int[] tokenIds() {
            return ids.stream().mapToInt(Integer::intValue).toArray();
        }

        long firstTokenAfter(long nanos) {
            return arrivals.stream().mapToLong(Long::longValue).filter(t -> t > nanos).min().orElse(Long.MAX_VALUE);
        }
    }

    private Job submitted(LocalCluster cluster, int index) {
        Job job = new Job();
        GenerationJob generation = new GenerationJob("failover-" + System.nanoTime() + "-" + index,
                tokenizer.encode(prompts.get(index)), maxTokens, SamplingParams.greedy(), false);
        cluster.node().backend().submit(generation, new TokenListener() {
            @Override
            public void onToken(int tokenId) {
                job.ids.add(tokenId);
                job.arrivals.add(System.nanoTime());
            }

            @Override
            public void onFinished(FinishReason reason) {
                job.done.complete(null);
            }

            @Override
            public void onFailed(String reason) {
                job.error = reason;
                job.done.complete(null);
            }
        });
        return job;
    }

    /** A streamed completion over HTTP (ignore_eos, greedy); an error event is recorded as the job's error. */
    private Job streamed(java.net.InetSocketAddress gateway, int index) {
        Job job = new Job();
        job.text = new StringBuilder();
        Thread.ofVirtual().start(() -> {
            try {
                HttpResponse<Stream<String>> response = HTTP.send(completion(gateway, index, true), HttpResponse.BodyHandlers.ofLines());
                if (response.statusCode() != 200) {
                    job.error = "HTTP " + response.statusCode();
                }
                try (Stream<String> lines = response.body()) {
                    for (String line : (Iterable<String>) lines::iterator) {
                        if (line.equals("data: [DONE]")) {
                            job.sawDone = true;
                        }
                        if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
                            continue;
                        }
                        JsonNode event = JSON.readTree(line.substring("data: ".length()));
                        if (event.has("error")) {
                            job.error = event.get("error").toString();
                        } else if (event.path("choices").size() > 0) {
                            job.text.append(event.get("choices").get(0).get("text").asText());
                            job.arrivals.add(System.nanoTime());
                        }
                    }
                }
            } catch (Exception e) {
                job.error = e.toString();
            }
            job.done.complete(null);
        });
        return job;
    }

    /**
     * A non-streaming completion over HTTP (ignore_eos, greedy): its text arrives whole, so its client sees no token
     * before the end; anything but 200 with a completion is the job's error.
     */
    private Job answeredWhole(LocalCluster cluster, int index) {
        Job job = new Job();
        job.text = new StringBuilder();
        Thread.ofVirtual().start(() -> {
            try {
                HttpResponse<String> response = HTTP.send(completion(cluster.httpAddress(), index, false), HttpResponse.BodyHandlers.ofString());
                JsonNode answer = JSON.readTree(response.body());
                if (response.statusCode() != 200 || answer.has("error")) {
                    job.error = "HTTP " + response.statusCode() + ": " + response.body();
                } else {
                    job.text.append(answer.path("choices").path(0).path("text").asText());
                    int tokens = answer.path("usage").path("completion_tokens").asInt();
                    long now = System.nanoTime();
                    for (int i = 0; i < tokens; i++) {
                        job.arrivals.add(now);
                    }
                }
            } catch (Exception e) {
                job.error = e.toString();
            }
            job.done.complete(null);
        });
        return job;
    }

    private HttpRequest completion(java.net.InetSocketAddress gateway, int index, boolean stream) {
        String body = JSON.createObjectNode().put("prompt", prompts.get(index)).put("max_tokens", maxTokens)
                .put("temperature", 0).put("stream", stream).put("ignore_eos", true).toString();
        URI uri = URI.create("http://" + gateway.getHostString() + ":" + gateway.getPort() + "/v1/completions");
        return HttpRequest.newBuilder(uri).timeout(Duration.ofMinutes(2)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    static void await(BooleanSupplier condition, String what, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within " + timeout + ": " + what);
            }
            Thread.sleep(20);
        }
    }

    static long millis(long fromNanos, long toNanos) {
        return (toNanos - fromNanos) / 1_000_000;
    }
}
