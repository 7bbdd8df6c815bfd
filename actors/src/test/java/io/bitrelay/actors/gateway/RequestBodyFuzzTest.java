package io.bitrelay.actors.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.gateway.CollectingSink.JsonResponse;
import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Property-based fuzzing of what a client can send as a completion body (issue 16): random bytes, random JSON with
 * the API's field names and values of every JSON type, and valid bodies with bytes replaced, inserted or deleted. The
 * gateway's parsing, UTF-8 check, prompt bound, tokenizing and context check must answer each with a 4xx in OpenAI's
 * JSON shape and a message, or hand the backend a job that fits the model — never a 5xx, never an exception.
 * Fixed seeds and bounded tries keep it a regression test that runs in seconds.
 */
class RequestBodyFuzzTest {
    private static final ServedModel MODEL = new ServedModel("fuzzed", 2048, 300);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> FIELDS = List.of("model", "prompt", "max_tokens", "temperature", "top_p", "top_k",
            "seed", "stop", "stream", "stream_options", "echo", "logprobs", "ignore_eos", "min_tokens", "n", "suffix");

    private static ActorSystem<Void> system;
    private static OptTokenizer tokenizer;
    private static CompletionEndpoint endpoint;
    private static final List<GenerationJob> handedOn = new ArrayList<>();

    @BeforeContainer
    static void start() throws Exception {
        Path temp = Files.createTempDirectory("bitrelay-fuzz");
        tokenizer = OptTokenizer.load(TestModels.writeTiny(temp.resolve("tiny")));
        system = ActorSystem.create(Behaviors.empty(), "request-body-fuzz");
        // Valid jobs are recorded and refused as if the queue were full: the property is about what reaches the backend.
        GenerationBackend recording = new GenerationBackend() {
            @Override
            public void submit(GenerationJob job, TokenListener listener) {
                synchronized (handedOn) {
                    handedOn.add(job);
                }
                throw new RejectedExecutionException("fuzzing: every valid job is refused after it is checked");
            }

            @Override
            public void cancel(String requestId) {
            }

            @Override
            public int queueDepth() {
                return 0;
            }
        };
        endpoint = new CompletionEndpoint(system, recording, tokenizer, MODEL,
                new GatewayMetrics(new PrometheusRegistry(), () -> 0), Duration.ofSeconds(5), 64);
    }

    @AfterContainer
    static void stop() {
        system.terminate();
        tokenizer.close();
    }

    @Property(tries = 300, seed = "16001")
    void arbitraryBytesAreAnsweredWith4xxJsonOrAValidJob(@ForAll("bytes") byte[] body) throws Exception {
        check(body);
    }

    @Property(tries = 400, seed = "16002")
    void arbitraryJsonWithTheApisFieldsIsAnsweredWith4xxJsonOrAValidJob(@ForAll("requests") String body) throws Exception {
        check(body.getBytes(StandardCharsets.UTF_8));
    }

    @Property(tries = 300, seed = "16003")
    void mutatedValidBodiesAreAnsweredWith4xxJsonOrAValidJob(@ForAll("mutatedBodies") byte[] body) throws Exception {
        check(body);
    }

    private static void check(byte[] body) throws Exception {
        int before = handedOn.size();
        JsonResponse response = resolve(endpoint.handle(ByteBuffer.wrap(body), new ClientConnection()));
        String shown = new String(body, StandardCharsets.UTF_8);
        if (handedOn.size() > before) {
            assertEquals(429, response.status(), "a job handed on is refused only by the backend: " + shown);
            checkFits(handedOn.getLast(), shown);
            return;
        }
        assertTrue(response.status() >= 400 && response.status() < 500, response.status() + " for " + shown + ": " + response.body());
        JsonNode error = JSON.readTree(response.body()).get("error");
        assertTrue(error != null && error.hasNonNull("type"), "OpenAI's error shape: " + response.body());
        assertFalse(error.path("message").asText().isBlank(), "a reason: " + response.body());
    }

    /** What the backend got is a job the model can run: a prompt within the vocabulary and the context. */
    private static void checkFits(GenerationJob job, String body) {
        int[] prompt = job.promptTokens();
        assertTrue(prompt.length > 0, "empty prompt handed on: " + body);
        for (int token : prompt) {
            assertTrue(token >= 0 && token < MODEL.vocabSize(), "token " + token + " handed on: " + body);
        }
        assertTrue((long) prompt.length + job.maxNewTokens() <= MODEL.contextLength(), "over the context: " + body);
    }

    private static JsonResponse resolve(CompletionEndpoint.Reply reply) throws Exception {
        return switch (reply) {
            case CompletionEndpoint.Reply.Now now -> now.response();
            case CompletionEndpoint.Reply.Later later -> later.response().toCompletableFuture().get(10, TimeUnit.SECONDS);
            case CompletionEndpoint.Reply.Deferred deferred -> resolve(deferred.reply().toCompletableFuture().get(10, TimeUnit.SECONDS));
            case CompletionEndpoint.Reply.EventStream stream -> fail("a stream for a job the backend refused");
        };
    }

    @Provide
    Arbitrary<byte[]> bytes() {
        return Arbitraries.bytes().array(byte[].class).ofMaxSize(400);
    }

    @Provide
    Arbitrary<String> requests() {
        Arbitrary<String> name = Arbitraries.oneOf(Arbitraries.of(FIELDS), Arbitraries.strings().ofMaxLength(12));
        return Arbitraries.maps(name, jsonValue(2)).ofMaxSize(8).map(RequestBodyFuzzTest::write);
    }

    /** A JSON value of any type, nested up to {@code depth}: the numbers include the edges of int and long. */
    private static Arbitrary<Object> jsonValue(int depth) {
        List<Arbitrary<?>> leaves = List.of(
                Arbitraries.of(true, false),
                Arbitraries.integers().between(-3, 5000),
                Arbitraries.integers(),
                Arbitraries.longs(),
                Arbitraries.doubles().between(-1e9, 1e9),
                Arbitraries.of(0.0, -0.0, 1e308, -1e-308, 2.5, 0.5),
                Arbitraries.strings().ofMaxLength(40),
                Arbitraries.strings().all().ofMaxLength(20),
                Arbitraries.of("hello world", "fuzzed", "", "\u0000", "\uD83D\uDE00", "</s>"));
        @SuppressWarnings({"unchecked", "rawtypes"})
        Arbitrary<Object> leaf = ((Arbitrary<Object>) (Arbitrary) Arbitraries.oneOf((List) leaves)).injectNull(0.1);
        if (depth == 0) {
            return leaf;
        }
        Arbitrary<Object> array = jsonValue(depth - 1).list().ofMaxSize(5).map(list -> list);
        Arbitrary<Object> object = Arbitraries.maps(Arbitraries.oneOf(Arbitraries.of(FIELDS), Arbitraries.strings().ofMaxLength(6)),
                jsonValue(depth - 1)).ofMaxSize(3).map(map -> map);
        return Arbitraries.frequencyOf(net.jqwik.api.Tuple.of(6, leaf), net.jqwik.api.Tuple.of(2, array),
                net.jqwik.api.Tuple.of(1, object));
    }

    @Provide
    Arbitrary<byte[]> mutatedBodies() {
        Arbitrary<byte[]> valid = Arbitraries.of(
                "{\"prompt\": \"hello world\", \"max_tokens\": 8}",
                "{\"prompt\": [2, 100, 101], \"max_tokens\": 4, \"temperature\": 0.7, \"top_p\": 0.9, \"stop\": [\"x\"]}",
                "{\"model\": \"fuzzed\", \"prompt\": \"hi\", \"echo\": true, \"logprobs\": 2, \"max_tokens\": 0}",
                "{\"prompt\": \"stream me\", \"stream\": true, \"stream_options\": {\"include_usage\": true}, \"seed\": 7}")
                .map(s -> s.getBytes(StandardCharsets.UTF_8));
        Arbitrary<List<int[]>> edits = Arbitraries.integers().between(0, 2).flatMap(kind -> Arbitraries.integers().between(0, 10_000)
                .flatMap(at -> Arbitraries.integers().between(0, 255).map(value -> new int[]{kind, at, value}))).list().ofMinSize(1).ofMaxSize(4);
        return net.jqwik.api.Combinators.combine(valid, edits).as(RequestBodyFuzzTest::mutate);
    }

    /** Applies each edit: {kind (0 replace, 1 insert, 2 delete), position (modulo the length), byte}. */
    private static byte[] mutate(byte[] body, List<int[]> edits) {
        List<Byte> bytes = new ArrayList<>();
        for (byte b : body) {
            bytes.add(b);
        }
        for (int[] edit : edits) {
            int at = edit[1] % Math.max(1, bytes.size());
            switch (edit[0]) {
                case 0 -> {
                    if (!bytes.isEmpty()) {
                        bytes.set(at, (byte) edit[2]);
                    }
                }
                case 1 -> bytes.add(at, (byte) edit[2]);
                default -> {
                    if (!bytes.isEmpty()) {
                        bytes.remove(at);
                    }
                }
            }
        }
        byte[] out = new byte[bytes.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = bytes.get(i);
        }
        return out;
    }

    private static String write(Map<String, Object> fields) {
        try {
            return JSON.writeValueAsString(new LinkedHashMap<>(fields));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
