package io.bitrelay.actors.gateway;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(10)
class CompletionRequestTest {
    private static InvalidRequestException rejected(String body) {
        return assertThrows(InvalidRequestException.class, () -> CompletionRequest.parse(body));
    }

    @Test
    void shouldApplyOpenAiDefaults() {
        CompletionRequest request = CompletionRequest.parse("{\"prompt\":\"hi\",\"user\":\"x\",\"unknown\":{\"a\":[1]}}");
        assertEquals("hi", request.prompt());
        assertNull(request.model());
        assertEquals(16, request.maxTokens());
        assertEquals(1f, request.temperature());
        assertEquals(1f, request.topP());
        assertEquals(0, request.topK());
        assertNull(request.seed());
        assertEquals(List.of(), request.stop());
        assertFalse(request.stream());
        assertFalse(request.ignoreEos());
        assertEquals(0, request.minTokens());
    }

    @Test
    void shouldRejectMinTokensOutsideZeroToMaxTokens() {
        assertEquals("min_tokens", rejected("{\"prompt\":\"p\",\"max_tokens\":4,\"min_tokens\":5}").param());
        assertEquals("min_tokens", rejected("{\"prompt\":\"p\",\"min_tokens\":-1}").param());
        assertEquals(4, CompletionRequest.parse("{\"prompt\":\"p\",\"max_tokens\":4,\"min_tokens\":4}").minTokens());
    }

    @Test
    void shouldTreatNullAsNotGiven() {
        CompletionRequest request = CompletionRequest.parse(
                "{\"prompt\":\"hi\",\"max_tokens\":null,\"stop\":null,\"seed\":null,\"n\":null,\"logprobs\":null,\"stream\":null}");
        assertEquals(16, request.maxTokens());
        assertEquals(List.of(), request.stop());
    }

    @Test
    void shouldReadEveryKnownField() {
        CompletionRequest request = CompletionRequest.parse("{\"model\":\"m\",\"prompt\":\"p\",\"max_tokens\":5,"
                + "\"temperature\":0,\"top_p\":0.5,\"top_k\":7,\"seed\":-3,\"stop\":[\"a\",\"b\"],\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true},\"n\":1,\"echo\":false,\"presence_penalty\":0,"
                + "\"ignore_eos\":true,\"min_tokens\":3}");
        assertEquals(new CompletionRequest("m", "p", null, 5, 0f, 0.5f, 7, -3L, List.of("a", "b"), true, true, false, null,
                true, 3), request);
        assertEquals(List.of("x"), CompletionRequest.parse("{\"prompt\":\"p\",\"stop\":\"x\"}").stop());
        assertEquals(0, CompletionRequest.parse("{\"prompt\":\"p\",\"top_k\":-1}").topK());
    }

    @Test
    void shouldRejectMalformedJson() {
        assertTrue(rejected("{\"prompt\": \"hi\"").getMessage().contains("not valid JSON"));
        assertTrue(rejected("{\"prompt\": \"hi\"} trailing").getMessage().contains("not valid JSON"));
        assertTrue(rejected("[1, 2]").getMessage().contains("JSON object"));
        assertTrue(rejected("").getMessage().contains("JSON object"));
    }

    @Test
    void shouldRejectWrongTypesNamingTheField() {
        record Case(String body, String field) {
        }
        for (Case c : List.of(
                new Case("{\"prompt\":\"p\",\"max_tokens\":\"16\"}", "max_tokens"),
                new Case("{\"prompt\":\"p\",\"max_tokens\":1.5}", "max_tokens"),
                new Case("{\"prompt\":\"p\",\"temperature\":\"hot\"}", "temperature"),
                new Case("{\"prompt\":\"p\",\"top_p\":true}", "top_p"),
                new Case("{\"prompt\":\"p\",\"top_k\":2.5}", "top_k"),
                new Case("{\"prompt\":\"p\",\"seed\":\"7\"}", "seed"),
                new Case("{\"prompt\":\"p\",\"stream\":\"yes\"}", "stream"),
                new Case("{\"prompt\":\"p\",\"stop\":5}", "stop"),
                new Case("{\"prompt\":\"p\",\"stop\":[\"a\",1]}", "stop"),
                new Case("{\"prompt\":\"p\",\"model\":3}", "model"),
                new Case("{\"prompt\":\"p\",\"n\":\"1\"}", "n"),
                new Case("{\"prompt\":\"p\",\"ignore_eos\":\"true\"}", "ignore_eos"),
                new Case("{\"prompt\":\"p\",\"ignore_eos\":1}", "ignore_eos"),
                new Case("{\"prompt\":\"p\",\"min_tokens\":1.5}", "min_tokens"),
                new Case("{\"prompt\":42}", "prompt"))) {
            InvalidRequestException e = rejected(c.body());
            assertEquals(c.field(), e.param(), c.body());
            assertTrue(e.getMessage().contains("'" + c.field() + "'"), e.getMessage());
            assertEquals(400, e.status());
        }
    }

    @Test
    void shouldRejectValuesItCannotHonour() {
        assertEquals("prompt", rejected("{}").param());
        assertTrue(rejected("{\"prompt\":\"\"}").getMessage().contains("must not be empty"));
        assertTrue(rejected("{\"prompt\":[\"a\",\"b\"]}").getMessage().contains("arrays of prompts are not supported"));
        assertTrue(rejected("{\"prompt\":\"p\",\"n\":2}").getMessage().contains("n = 1"));
        assertTrue(rejected("{\"prompt\":\"p\",\"max_tokens\":0}").getMessage().contains("max_tokens"));
        assertTrue(rejected("{\"prompt\":\"p\",\"temperature\":-1}").getMessage().contains("temperature"));
        assertTrue(rejected("{\"prompt\":\"p\",\"top_p\":0}").getMessage().contains("top_p"));
        assertTrue(rejected("{\"prompt\":\"p\",\"top_p\":1e-50}").getMessage().contains("top_p"));
        assertTrue(rejected("{\"prompt\":\"p\",\"temperature\":1e300}").getMessage().contains("temperature"));
        assertTrue(rejected("{\"prompt\":\"p\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}").getMessage().contains("at most 4"));
        assertTrue(rejected("{\"prompt\":\"p\",\"stop\":\"\"}").getMessage().contains("empty"));
        assertEquals("logprobs", rejected("{\"prompt\":\"p\",\"logprobs\":7}").param());
        assertEquals("echo", rejected("{\"prompt\":\"p\",\"echo\":true}").param());
        assertEquals("best_of", rejected("{\"prompt\":\"p\",\"best_of\":3}").param());
    }

    @Test
    void shouldDeriveADifferentReproducibleSeedPerRequestIdUnlessGiven() {
        CompletionRequest unseeded = CompletionRequest.parse("{\"prompt\":\"p\"}");
        assertEquals(unseeded.seedFor("cmpl-1"), unseeded.seedFor("cmpl-1"));
        assertNotEquals(unseeded.seedFor("cmpl-1"), unseeded.seedFor("cmpl-2"));
        CompletionRequest seeded = CompletionRequest.parse("{\"prompt\":\"p\",\"seed\":99}");
        assertEquals(99, seeded.seedFor("cmpl-1"));
    }

    @Test
    void shouldReadAPromptOfTokenIdsForScoring() {
        CompletionRequest request = CompletionRequest.parse("{\"prompt\":[2,31414,232],\"echo\":true,\"max_tokens\":0,\"logprobs\":3}");
        assertNull(request.prompt());
        assertEquals(List.of(2, 31414, 232), java.util.Arrays.stream(request.promptTokens()).boxed().toList());
        assertTrue(request.echo());
        assertEquals(3, request.logprobs());
        assertTrue(request.scoresPrompt());
        CompletionRequest generating = CompletionRequest.parse("{\"prompt\":\"hi\",\"max_tokens\":4,\"logprobs\":0}");
        assertFalse(generating.scoresPrompt());
        assertEquals(0, generating.logprobs());
    }

    @Test
    void shouldRejectBadScoringCombinationsNamingTheField() {
        assertEquals("logprobs", rejected("{\"prompt\":\"p\",\"logprobs\":6}").param());
        assertEquals("logprobs", rejected("{\"prompt\":\"p\",\"logprobs\":-1}").param());
        assertEquals("logprobs", rejected("{\"prompt\":\"p\",\"logprobs\":true}").param());
        assertEquals("echo", rejected("{\"prompt\":\"p\",\"echo\":true,\"max_tokens\":3}").param());
        assertEquals("echo", rejected("{\"prompt\":\"p\",\"echo\":true}").param(), "echo with the default 16 tokens");
        assertEquals("max_tokens", rejected("{\"prompt\":\"p\",\"max_tokens\":0}").param());
        assertEquals("max_tokens", rejected("{\"prompt\":\"p\",\"max_tokens\":-1,\"echo\":true}").param());
        assertEquals("stream", rejected("{\"prompt\":\"p\",\"max_tokens\":2,\"logprobs\":1,\"stream\":true}").param());
        assertEquals("stream", rejected("{\"prompt\":\"p\",\"max_tokens\":0,\"echo\":true,\"stream\":true}").param());
    }

    @Test
    void shouldRejectArraysThatAreNotOnePromptOfTokenIds() {
        assertTrue(rejected("{\"prompt\":[\"a\",\"b\"]}").getMessage().contains("arrays of prompts"));
        assertEquals("prompt", rejected("{\"prompt\":[[1,2],[3]]}").param());
        assertEquals("prompt", rejected("{\"prompt\":[]}").param());
        assertTrue(rejected("{\"prompt\":[1,-5]}").getMessage().contains("-5"));
        assertEquals("prompt", rejected("{\"prompt\":[1,1e3]}").param());
        assertEquals("prompt", rejected("{\"prompt\":[1,99999999999]}").param());
    }
}
