package io.bitrelay.actors.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.generate.Generator;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The gateway end to end on a tiny synthetic model: HTTP in, LocalGenerationBackend underneath. */
@Timeout(60)
class GatewayHttpServerTest {
    private static final String MODEL = "tiny-opt";

    @TempDir
    static Path temp;
    static ActorSystem<Void> system;
    static OptModel model;
    static OptTokenizer tokenizer;
    static LocalGenerationBackend backend;
    static GatewayHttpServer server;
    static HttpTestClient http;

    @BeforeAll
    static void start() {
        Path checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
        model = OptModel.load(checkpoint);
        tokenizer = OptTokenizer.load(checkpoint);
        backend = LocalGenerationBackend.start(model, LocalBackendSettings.defaults());
        system = ActorSystem.create(Behaviors.empty(), "gateway-test");
        GatewayMetrics metrics = new GatewayMetrics(new PrometheusRegistry(), backend::queueDepth);
        server = new GatewayHttpServer(system, backend, tokenizer, ServedModel.of(MODEL, model.config()), metrics,
                GatewaySettings.defaults().withPort(0));
        InetSocketAddress address = server.bind();
        assertNotEquals(0, address.getPort());
        http = new HttpTestClient(address);
    }

    @AfterAll
    static void stop() {
        server.close();
        system.terminate();
        backend.close();
        tokenizer.close();
        model.close();
    }

    /** The text Generator makes for the prompt alone, decoded as the gateway decodes it. */
    private static String generatorText(String prompt, int maxTokens, SamplingParams sampling) {
        Generator.Result result = new Generator(model).generate(tokenizer.encode(prompt), maxTokens, sampling, t -> true);
        return tokenizer.decode(result.tokens());
    }

    private static String completionBody(String prompt, int maxTokens, String extra) {
        return "{\"model\":\"" + MODEL + "\",\"prompt\":" + HttpTestClient.JSON.valueToTree(prompt) + ",\"max_tokens\":"
                + maxTokens + ",\"temperature\":0" + extra + "}";
    }

    private static JsonNode complete(String body) throws Exception {
        HttpTestClient.Reply reply = http.post("/v1/completions", body);
        assertEquals(200, reply.status(), reply.body());
        assertTrue(reply.contentType().startsWith("application/json"), reply.contentType());
        return reply.json();
    }

    /** The concatenated deltas, the finish reason and the event count of a streamed completion. */
    private record Streamed(String text, String finishReason, List<JsonNode> chunks) {
    }

    private static Streamed stream(String body) throws Exception {
        HttpTestClient.Reply reply = http.post("/v1/completions", body);
        assertEquals(200, reply.status(), reply.body());
        assertTrue(reply.contentType().startsWith("text/event-stream"), reply.contentType());
        List<String> events = reply.events();
        assertEquals("[DONE]", events.getLast());
        StringBuilder text = new StringBuilder();
        List<JsonNode> chunks = new ArrayList<>();
        String finishReason = null;
        for (String event : events.subList(0, events.size() - 1)) {
            JsonNode chunk = HttpTestClient.JSON.readTree(event);
            chunks.add(chunk);
            assertEquals("text_completion", chunk.get("object").asText());
            if (chunk.get("choices").isEmpty()) {
                continue; // the usage chunk
            }
            assertFalse(finishReason != null, "nothing may follow the chunk with the finish reason but usage");
            JsonNode choice = chunk.get("choices").get(0);
            text.append(choice.get("text").asText());
            if (!choice.get("finish_reason").isNull()) {
                finishReason = choice.get("finish_reason").asText();
            }
        }
        return new Streamed(text.toString(), finishReason, chunks);
    }

    private static void assertStillServing() throws Exception {
        JsonNode ok = complete(completionBody("still there?", 2, ""));
        assertEquals(2, ok.get("usage").get("completion_tokens").asInt());
    }

    private static void assertBadRequest(String body, String param, String... messageParts) throws Exception {
        HttpTestClient.Reply reply = http.post("/v1/completions", body);
        assertEquals(400, reply.status(), reply.body());
        JsonNode error = reply.json().get("error");
        assertEquals("invalid_request_error", error.get("type").asText());
        assertTrue(error.get("code").isNull());
        if (param == null) {
            assertTrue(error.get("param").isNull(), reply.body());
        } else {
            assertEquals(param, error.get("param").asText(), reply.body());
        }
        for (String part : messageParts) {
            assertTrue(error.get("message").asText().contains(part), "'" + part + "' missing from " + reply.body());
        }
        assertStillServing();
    }

    @Test
    void shouldCompleteGreedilyWithTheGeneratorsText() throws Exception {
        String prompt = "the quick brown fox";
        JsonNode response = complete(completionBody(prompt, 24, ""));
        assertTrue(response.get("id").asText().startsWith("cmpl-"));
        assertEquals("text_completion", response.get("object").asText());
        assertEquals(MODEL, response.get("model").asText());
        assertTrue(response.get("created").asLong() > 1_600_000_000L);
        JsonNode choice = response.get("choices").get(0);
        assertEquals(0, choice.get("index").asInt());
        assertTrue(choice.get("logprobs").isNull());
        assertEquals(generatorText(prompt, 24, SamplingParams.greedy()), choice.get("text").asText());
        JsonNode usage = response.get("usage");
        int promptTokens = tokenizer.encode(prompt).length;
        assertEquals(promptTokens, usage.get("prompt_tokens").asInt());
        int completionTokens = usage.get("completion_tokens").asInt();
        assertEquals(promptTokens + completionTokens, usage.get("total_tokens").asInt());
        // The tiny model's bytes are mostly not UTF-8, so equal text alone proves little: the counts must match too.
        Generator.Result alone = new Generator(model).generate(tokenizer.encode(prompt), 24, SamplingParams.greedy(), t -> true);
        boolean eos = alone.stopReason() == Generator.StopReason.EOS;
        assertEquals(alone.tokens().length - (eos ? 1 : 0), completionTokens, "EOS is not a completion token");
        assertEquals(eos ? "stop" : "length", choice.get("finish_reason").asText());
    }

    @Test
    void shouldSampleReproduciblyWithASeed() throws Exception {
        String body = "{\"prompt\":\"once upon\",\"max_tokens\":20,\"temperature\":0.9,\"top_k\":50,\"top_p\":0.9,\"seed\":1234}";
        String first = complete(body).get("choices").get(0).get("text").asText();
        assertEquals(first, complete(body).get("choices").get(0).get("text").asText());
        assertEquals(generatorText("once upon", 20, new SamplingParams(0.9f, 50, 0.9f, 1234)), first);
    }

    @Test
    void shouldStreamDeltasThatConcatenateToTheNonStreamingText() throws Exception {
        for (String prompt : List.of("hello there", "a", "zebra crossing at night")) {
            String whole = complete(completionBody(prompt, 30, "")).get("choices").get(0).get("text").asText();
            Streamed streamed = stream(completionBody(prompt, 30, ",\"stream\":true"));
            assertEquals(whole, streamed.text(), prompt);
            assertTrue(List.of("stop", "length").contains(streamed.finishReason()));
            assertTrue(streamed.chunks().size() >= 2, "one chunk per delta and a last one");
            for (JsonNode chunk : streamed.chunks()) {
                assertEquals(streamed.chunks().getFirst().get("id").asText(), chunk.get("id").asText());
            }
        }
    }

    @Test
    void shouldEndAStreamWithUsageWhenAsked() throws Exception {
        Streamed streamed = stream(completionBody("count", 5,
                ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"));
        JsonNode last = streamed.chunks().getLast();
        assertTrue(last.get("choices").isEmpty());
        assertEquals(tokenizer.encode("count").length, last.get("usage").get("prompt_tokens").asInt());
        assertTrue(last.get("usage").get("completion_tokens").asInt() >= 1);
    }

    @Test
    void shouldTruncateAtAStopStringAndStopGenerating() throws Exception {
        String prompt = "stop me";
        String whole = generatorText(prompt, 40, SamplingParams.greedy());
        int at = -1;
        for (int i = 3; i + 2 <= whole.length() && at < 0; i++) {
            String candidate = whole.substring(i, i + 2);
            if (candidate.chars().allMatch(Character::isLetter)) {
                at = i;
            }
        }
        assertTrue(at > 0, "no letters to use as a stop string in " + whole);
        String stop = whole.substring(at, at + 2);
        String expected = whole.substring(0, whole.indexOf(stop));

        JsonNode response = complete(completionBody(prompt, 40, ",\"stop\":[\"@@@\"," + HttpTestClient.JSON.valueToTree(stop) + "]"));
        JsonNode choice = response.get("choices").get(0);
        assertEquals(expected, choice.get("text").asText());
        assertEquals("stop", choice.get("finish_reason").asText());
        assertTrue(response.get("usage").get("completion_tokens").asInt() < 40, "generation must stop at the stop string");

        Streamed streamed = stream(completionBody(prompt, 40, ",\"stream\":true,\"stop\":" + HttpTestClient.JSON.valueToTree(stop)));
        assertEquals(expected, streamed.text());
        assertEquals("stop", streamed.finishReason());
    }

    @Test
    void shouldAnswerConcurrentRequestsAsIfAlone() throws Exception {
        List<String> prompts = List.of("alpha", "beta gamma", "delta epsilon zeta", "eta", "theta iota kappa lambda", "mu");
        List<CompletableFuture<HttpTestClient.Reply>> replies = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            String extra = i % 2 == 0 ? "" : ",\"stream\":true";
            replies.add(http.postAsync("/v1/completions", completionBody(prompts.get(i), 12 + 4 * i, extra)));
        }
        for (int i = 0; i < prompts.size(); i++) {
            HttpTestClient.Reply reply = replies.get(i).join();
            assertEquals(200, reply.status(), reply.body());
            String text;
            if (i % 2 == 0) {
                text = reply.json().get("choices").get(0).get("text").asText();
            } else {
                StringBuilder deltas = new StringBuilder();
                for (String event : reply.events()) {
                    if (!event.equals("[DONE]")) {
                        deltas.append(HttpTestClient.JSON.readTree(event).get("choices").get(0).get("text").asText());
                    }
                }
                text = deltas.toString();
            }
            assertEquals(generatorText(prompts.get(i), 12 + 4 * i, SamplingParams.greedy()), text, prompts.get(i));
        }
    }

    @Test
    void shouldRejectMalformedJson() throws Exception {
        assertBadRequest("{\"prompt\": \"hi\", ", null, "not valid JSON");
        assertBadRequest("not json at all", null, "not valid JSON");
    }

    @Test
    void shouldRejectFieldsOfTheWrongTypeNamingTheField() throws Exception {
        assertBadRequest("{\"prompt\":\"hi\",\"max_tokens\":\"ten\"}", "max_tokens", "'max_tokens'", "integer");
        assertBadRequest("{\"prompt\":\"hi\",\"temperature\":[0]}", "temperature", "'temperature'", "number");
        assertBadRequest("{\"prompt\":\"hi\",\"stream\":1}", "stream", "'stream'", "boolean");
        assertBadRequest("{\"prompt\":\"hi\",\"stop\":{\"a\":1}}", "stop", "'stop'");
    }

    @Test
    void shouldRejectAnEmptyPrompt() throws Exception {
        assertBadRequest("{\"prompt\":\"\"}", "prompt", "empty");
        assertBadRequest("{\"max_tokens\":3}", "prompt", "prompt");
    }

    @Test
    void shouldRejectAPromptArray() throws Exception {
        assertBadRequest("{\"prompt\":[\"one\",\"two\"]}", "prompt", "arrays of prompts are not supported");
    }

    @Test
    void shouldRejectMoreThanOneChoice() throws Exception {
        assertBadRequest("{\"prompt\":\"hi\",\"n\":2}", "n", "n = 1");
    }

    @Test
    void shouldRejectMaxTokensBeyondTheContext() throws Exception {
        int promptTokens = tokenizer.encode("hello").length;
        int maxTokens = 160 - promptTokens + 1;
        assertBadRequest("{\"prompt\":\"hello\",\"max_tokens\":" + maxTokens + "}", "max_tokens",
                "160", String.valueOf(promptTokens + maxTokens), promptTokens + " in your prompt");
        assertBadRequest("{\"prompt\":\"hello\",\"max_tokens\":0}", "max_tokens", "needs echo");
    }

    @Test
    void shouldAnswer404ForAnotherModel() throws Exception {
        HttpTestClient.Reply reply = http.post("/v1/completions", "{\"model\":\"gpt-9\",\"prompt\":\"hi\"}");
        assertEquals(404, reply.status());
        assertEquals("model_not_found", reply.json().get("error").get("code").asText());
        assertStillServing();
    }

    @Test
    void shouldListTheServedModel() throws Exception {
        HttpTestClient.Reply reply = http.get("/v1/models");
        assertEquals(200, reply.status());
        JsonNode models = reply.json();
        assertEquals("list", models.get("object").asText());
        JsonNode entry = models.get("data").get(0);
        assertEquals(MODEL, entry.get("id").asText());
        assertEquals("model", entry.get("object").asText());
        assertEquals("bitrelay", entry.get("owned_by").asText());
        assertEquals(160, entry.get("context_length").asInt());
    }

    @Test
    void shouldReportHealthy() throws Exception {
        HttpTestClient.Reply reply = http.get("/health");
        assertEquals(200, reply.status());
        assertEquals("ok", reply.json().get("status").asText());
    }

    @Test
    void shouldExposeGatewayMetrics() throws Exception {
        complete(completionBody("metrics please", 3, ""));
        HttpTestClient.Reply reply = http.get("/metrics");
        assertEquals(200, reply.status());
        assertTrue(reply.contentType().startsWith("text/plain"), reply.contentType());
        String text = reply.body();
        for (String name : List.of("bitrelay_gateway_requests_total{outcome=\"ok\"}",
                "bitrelay_gateway_requests_total{outcome=\"invalid\"}", "bitrelay_gateway_prompt_tokens_total",
                "bitrelay_gateway_completion_tokens_total", "bitrelay_gateway_requests_in_flight",
                "bitrelay_gateway_queue_depth", "bitrelay_gateway_request_duration_seconds_bucket",
                "bitrelay_gateway_time_to_first_token_seconds_count")) {
            assertTrue(text.contains(name), name + " missing from\n" + text);
        }
        assertTrue(metricValue(text, "bitrelay_gateway_completion_tokens_total") >= 3);
        assertTrue(metricValue(text, "bitrelay_gateway_requests_total{outcome=\"ok\"}") >= 1);
    }

    static double metricValue(String exposition, String series) {
        for (String line : exposition.split("\n")) {
            if (line.startsWith(series + " ")) {
                return Double.parseDouble(line.substring(series.length() + 1).trim());
            }
        }
        throw new AssertionError(series + " not in\n" + exposition);
    }

    private static int[] randomPrompt(int length, long seed) {
        return new java.util.SplittableRandom(seed).ints(length, 4, model.config().vocabSize()).toArray();
    }

    private static String idsJson(int[] ids) {
        return java.util.Arrays.toString(ids).replace(" ", "");
    }

    @Test
    void shouldScoreAPromptOfTokenIdsAsPerplexityDoes() throws Exception {
        int[] prompt = randomPrompt(40, 11);
        JsonNode response = complete("{\"prompt\":" + idsJson(prompt) + ",\"echo\":true,\"max_tokens\":0,\"logprobs\":2}");
        JsonNode choice = response.get("choices").get(0);
        assertEquals("length", choice.get("finish_reason").asText());
        assertEquals(tokenizer.decode(prompt), choice.get("text").asText());
        assertEquals(40, response.get("usage").get("prompt_tokens").asInt());
        assertEquals(0, response.get("usage").get("completion_tokens").asInt());
        JsonNode logprobs = choice.get("logprobs");
        assertEquals(40, logprobs.get("tokens").size());
        assertTrue(logprobs.get("token_logprobs").get(0).isNull(), "nothing predicts the first token");
        assertTrue(logprobs.get("top_logprobs").get(0).isNull());
        double nll = 0;
        int previousOffset = -1;
        for (int t = 1; t < 40; t++) {
            double logprob = logprobs.get("token_logprobs").get(t).asDouble();
            nll -= logprob;
            JsonNode top = logprobs.get("top_logprobs").get(t);
            assertTrue(top.size() >= 1 && top.size() <= 2, top.toString());
            double best = top.properties().iterator().next().getValue().asDouble();
            assertTrue(best >= logprob - 1e-12, "the top alternative is at least as likely as the token");
            int offset = logprobs.get("text_offset").get(t).asInt();
            assertTrue(offset >= previousOffset, "offsets never go back");
            previousOffset = offset;
        }
        assertEquals(0, logprobs.get("text_offset").get(0).asInt());
        double expected = io.bitrelay.runtime.eval.Perplexity.windowNll(model, prompt);
        assertEquals(expected, nll, 1e-7 * expected, "the same helper, up to JIT-tier ulps of the forward pass");
    }

    @Test
    void shouldReportTheLogprobOfEveryGeneratedToken() throws Exception {
        JsonNode response = complete(completionBody("the quick brown fox", 5, ",\"logprobs\":1"));
        JsonNode logprobs = response.get("choices").get(0).get("logprobs");
        int generated = response.get("usage").get("completion_tokens").asInt();
        assertEquals(generated, logprobs.get("token_logprobs").size());
        for (int i = 0; i < generated; i++) {
            double logprob = logprobs.get("token_logprobs").get(i).asDouble();
            double best = logprobs.get("top_logprobs").get(i).properties().iterator().next().getValue().asDouble();
            assertTrue(logprob < 0);
            assertEquals(best, logprob, 1e-12, "greedy takes the most likely token");
        }
    }

    @Test
    void shouldRejectPromptTokenIdsOutsideTheVocabulary() throws Exception {
        int vocab = model.config().vocabSize();
        assertBadRequest("{\"prompt\":[2," + vocab + "],\"echo\":true,\"max_tokens\":0,\"logprobs\":0}", "prompt",
                "outside the vocabulary", Integer.toString(vocab));
        assertBadRequest("{\"prompt\":\"hi\",\"echo\":true,\"max_tokens\":4}", "echo", "max_tokens = 0");
        assertBadRequest("{\"prompt\":\"hi\",\"logprobs\":9}", "logprobs", "between 0 and 5");
    }
}
