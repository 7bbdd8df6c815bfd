package io.bitrelay.actors.gateway;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.util.ArrayList;
import java.util.List;

/**
 * A validated body of {@code POST /v1/completions}, following OpenAI's legacy completions API. Fields the
 * gateway does not know are ignored; a known field of the wrong type, or a value it cannot honour, is a
 * 400 that names the field. JSON {@code null} means "not given" for every optional field.
 *
 * @param model       the model asked for, or null (then the served one)
 * @param prompt      one non-empty string, or null when the prompt came as token ids
 * @param promptTokens the prompt as token ids (an array of integers, as lm-evaluation-harness sends it), or null
 *                    when it came as a string; arrays of prompts are refused
 * @param maxTokens   {@code max_tokens}, default 16; 0 only with {@code echo}: score the prompt, generate nothing
 * @param echo        answer with the prompt (its text, and with {@code logprobs} its tokens' log-probabilities)
 * @param logprobs    {@code logprobs}: top alternatives per token, 0..5, or null for no log-probabilities
 * @param temperature default 1 as in OpenAI's API; 0 means greedy
 * @param topP        {@code top_p} in (0, 1], default 1
 * @param topK        {@code top_k}, an extension: 0 (or -1, as vLLM spells it) means no cut
 * @param seed        the sampler's seed, or null: then {@link #seedFor} derives one from the request id,
 *                    so every request samples differently and a given id always samples the same way
 * @param stop        up to 4 non-empty stop strings
 * @param includeUsage {@code stream_options.include_usage}: a streamed response ends with a usage chunk
 * @param ignoreEos   {@code ignore_eos} (vLLM's name): generate max_tokens whatever the model says, e.g. to benchmark
 * @param minTokens   {@code min_tokens} (vLLM's name): an EOS before this many tokens does not end the completion
 */
public record CompletionRequest(String model, String prompt, int[] promptTokens, int maxTokens, float temperature,
                                float topP, int topK, Long seed, List<String> stop, boolean stream, boolean includeUsage,
                                boolean echo, Integer logprobs, boolean ignoreEos, int minTokens) {
    public static final int DEFAULT_MAX_TOKENS = 16;
    /** OpenAI's legacy completions API allows at most 5 top log-probabilities. */
    public static final int MAX_LOGPROBS = 5;
    public static final int MAX_STOP_STRINGS = 4;

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();

    public static CompletionRequest parse(String body) {
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (JacksonException e) {
            throw notJson(e);
        }
        return fromRoot(root);
    }

    /** Parses a body of UTF-8 bytes as they came, without a decoded copy; the caller checked they are UTF-8. */
    public static CompletionRequest parse(java.nio.ByteBuffer utf8Body) {
        JsonNode root;
        try {
            root = JSON.readTree(new com.fasterxml.jackson.databind.util.ByteBufferBackedInputStream(utf8Body.duplicate()));
        } catch (JacksonException e) {
            throw notJson(e);
        } catch (java.io.IOException e) {
            throw new IllegalStateException("reading a buffer in memory failed", e);
        }
        return fromRoot(root);
    }

    private static InvalidRequestException notJson(JacksonException e) {
        return new InvalidRequestException("The body of the request is not valid JSON: " + e.getOriginalMessage(), null);
    }

    private static CompletionRequest fromRoot(JsonNode root) {
        if (root == null || !root.isObject()) {
            throw new InvalidRequestException("The body of the request must be a JSON object", null);
        }
        return fromJson(root);
    }

    static CompletionRequest fromJson(JsonNode root) {
        unsupportedUnless(root, "n", node -> integer(node, "n") == 1, "only n = 1 is supported");
        unsupportedUnless(root, "best_of", node -> integer(node, "best_of") == 1, "only best_of = 1 is supported");
        unsupportedUnless(root, "suffix", node -> text(node, "suffix").isEmpty(), "suffix is not supported");
        unsupportedUnless(root, "presence_penalty", node -> number(node, "presence_penalty") == 0,
                "presence_penalty is not supported (only 0)");
        unsupportedUnless(root, "frequency_penalty", node -> number(node, "frequency_penalty") == 0,
                "frequency_penalty is not supported (only 0)");
        unsupportedUnless(root, "logit_bias", node -> object(node, "logit_bias").isEmpty(), "logit_bias is not supported");

        String model = given(root, "model") ? text(root.get("model"), "model") : null;
        int[] promptTokens = promptTokens(root);
        String prompt = promptTokens == null ? prompt(root) : null;
        boolean echo = given(root, "echo") && bool(root.get("echo"), "echo");
        Integer logprobs = given(root, "logprobs") ? integer(root.get("logprobs"), "logprobs") : null;
        if (logprobs != null && (logprobs < 0 || logprobs > MAX_LOGPROBS)) {
            throw new InvalidRequestException("logprobs must be between 0 and " + MAX_LOGPROBS + ", got " + logprobs, "logprobs");
        }
        int maxTokens = given(root, "max_tokens") ? integer(root.get("max_tokens"), "max_tokens") : DEFAULT_MAX_TOKENS;
        if (maxTokens < 0) {
            throw new InvalidRequestException("max_tokens must be at least 0, got " + maxTokens, "max_tokens");
        }
        if (maxTokens == 0 && !echo) {
            throw new InvalidRequestException("max_tokens = 0 generates nothing: it needs echo = true (to score the prompt)",
                    "max_tokens");
        }
        if (echo && maxTokens > 0) {
            throw new InvalidRequestException("echo is supported for prompt scoring only, with max_tokens = 0 (got "
                    + maxTokens + ")", "echo");
        }
        // Checked as the floats the sampler gets: 1e-50 is > 0 as a double but 0 as a float.
        float temperature = given(root, "temperature") ? (float) number(root.get("temperature"), "temperature") : 1f;
        if (!(temperature >= 0f) || Float.isInfinite(temperature)) {
            throw new InvalidRequestException("temperature must be a finite number >= 0, got " + temperature, "temperature");
        }
        float topP = given(root, "top_p") ? (float) number(root.get("top_p"), "top_p") : 1f;
        if (!(topP > 0f && topP <= 1f)) {
            throw new InvalidRequestException("top_p must be in (0, 1], got " + topP, "top_p");
        }
        int topK = given(root, "top_k") ? integer(root.get("top_k"), "top_k") : 0;
        if (topK < -1) {
            throw new InvalidRequestException("top_k must be >= 0 (0 or -1: no cut), got " + topK, "top_k");
        }
        Long seed = given(root, "seed") ? longInteger(root.get("seed"), "seed") : null;
        List<String> stop = stop(root);
        boolean stream = given(root, "stream") && bool(root.get("stream"), "stream");
        boolean includeUsage = false;
        if (given(root, "stream_options")) {
            JsonNode options = object(root.get("stream_options"), "stream_options");
            if (given(options, "include_usage")) {
                includeUsage = bool(options.get("include_usage"), "stream_options.include_usage");
            }
        }
        if (stream && (echo || logprobs != null)) {
            throw new InvalidRequestException("echo and logprobs are not supported with stream = true", "stream");
        }
        boolean ignoreEos = given(root, "ignore_eos") && bool(root.get("ignore_eos"), "ignore_eos");
        int minTokens = given(root, "min_tokens") ? integer(root.get("min_tokens"), "min_tokens") : 0;
        if (minTokens < 0 || minTokens > maxTokens) {
            throw new InvalidRequestException("min_tokens must be between 0 and max_tokens (" + maxTokens + "), got "
                    + minTokens, "min_tokens");
        }
        return new CompletionRequest(model, prompt, promptTokens, maxTokens, temperature, topP, Math.max(topK, 0),
                seed, stop, stream, includeUsage, echo, logprobs, ignoreEos, minTokens);
    }

    /** The request scores its prompt (echo with max_tokens = 0) instead of generating. */
    public boolean scoresPrompt() {
        return maxTokens == 0;
    }

    /** Arrays compare by content. */
    @Override
    public boolean equals(Object other) {
        return other instanceof CompletionRequest r && java.util.Objects.equals(r.model, model)
                && java.util.Objects.equals(r.prompt, prompt) && java.util.Arrays.equals(r.promptTokens, promptTokens)
                && r.maxTokens == maxTokens && r.temperature == temperature && r.topP == topP && r.topK == topK
                && java.util.Objects.equals(r.seed, seed) && r.stop.equals(stop) && r.stream == stream
                && r.includeUsage == includeUsage && r.echo == echo && java.util.Objects.equals(r.logprobs, logprobs)
                && r.ignoreEos == ignoreEos && r.minTokens == minTokens;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(model, prompt, maxTokens, seed, stop, echo, logprobs) * 31
                + java.util.Arrays.hashCode(promptTokens);
    }

    /** The prompt as token ids when it is an array of integers; null when it is not an array. */
    private static int[] promptTokens(JsonNode root) {
        JsonNode node = root.get("prompt");
        if (node == null || !node.isArray()) {
            return null;
        }
        if (node.isEmpty()) {
            throw new InvalidRequestException("prompt must not be empty", "prompt");
        }
        int[] tokens = new int[node.size()];
        for (int i = 0; i < tokens.length; i++) {
            JsonNode element = node.get(i);
            if (!element.isIntegralNumber()) {
                throw new InvalidRequestException("prompt must be a string or one array of token ids: arrays of prompts"
                        + " are not supported (element " + i + " is " + abbreviate(element.toString()) + ")", "prompt");
            }
            if (!element.canConvertToInt() || element.intValue() < 0) {
                throw new InvalidRequestException("prompt token " + i + " is " + element + ", not a token id (>= 0)", "prompt");
            }
            tokens[i] = element.intValue();
        }
        return tokens;
    }

    /** The sampler's seed: the request's own, or one derived from the request id (FNV-1a, 64 bit). */
    public long seedFor(String requestId) {
        if (seed != null) {
            return seed;
        }
        long hash = 0xcbf29ce484222325L;
        for (int i = 0; i < requestId.length(); i++) {
            hash ^= requestId.charAt(i);
            hash *= 0x100000001b3L;
        }
        return hash;
    }

    private static String prompt(JsonNode root) {
        if (!given(root, "prompt")) {
            throw new InvalidRequestException("You must provide a prompt", "prompt");
        }
        JsonNode node = root.get("prompt");
        String prompt = text(node, "prompt");
        if (prompt.isEmpty()) {
            throw new InvalidRequestException("prompt must not be empty", "prompt");
        }
        return prompt;
    }

    private static List<String> stop(JsonNode root) {
        if (!given(root, "stop")) {
            return List.of();
        }
        JsonNode node = root.get("stop");
        List<String> stops = new ArrayList<>();
        if (node.isArray()) {
            if (node.size() > MAX_STOP_STRINGS) {
                throw new InvalidRequestException("stop takes at most " + MAX_STOP_STRINGS + " strings, got "
                        + node.size(), "stop");
            }
            for (JsonNode element : node) {
                stops.add(text(element, "stop"));
            }
        } else if (node.isTextual()) {
            stops.add(node.asText());
        } else {
            throw wrongType("stop", "a string or an array of strings", node);
        }
        if (stops.contains("")) {
            throw new InvalidRequestException("stop strings must not be empty", "stop");
        }
        return List.copyOf(stops);
    }

    private interface Check {
        boolean accepts(JsonNode node);
    }

    private static void unsupportedUnless(JsonNode root, String field, Check check, String message) {
        if (given(root, field) && !check.accepts(root.get(field))) {
            throw new InvalidRequestException(message, field);
        }
    }

    private static boolean given(JsonNode root, String field) {
        JsonNode node = root.get(field);
        return node != null && !node.isNull();
    }

    private static String text(JsonNode node, String field) {
        if (!node.isTextual()) {
            throw wrongType(field, "a string", node);
        }
        return node.asText();
    }

    private static int integer(JsonNode node, String field) {
        if (!node.isIntegralNumber() || !node.canConvertToInt()) {
            throw wrongType(field, "an integer", node);
        }
        return node.intValue();
    }

    private static long longInteger(JsonNode node, String field) {
        if (!node.isIntegralNumber() || !node.canConvertToLong()) {
            throw wrongType(field, "a 64-bit integer", node);
        }
        return node.longValue();
    }

    private static double number(JsonNode node, String field) {
        if (!node.isNumber()) {
            throw wrongType(field, "a number", node);
        }
        return node.doubleValue();
    }

    private static boolean bool(JsonNode node, String field) {
        if (!node.isBoolean()) {
            throw wrongType(field, "a boolean", node);
        }
        return node.booleanValue();
    }

    private static JsonNode object(JsonNode node, String field) {
        if (!node.isObject()) {
            throw wrongType(field, "an object", node);
        }
        return node;
    }

    private static InvalidRequestException wrongType(String field, String expected, JsonNode node) {
        return new InvalidRequestException("'" + field + "' must be " + expected + ", got "
                + node.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + " " + abbreviate(node.toString()), field);
    }

    private static String abbreviate(String json) {
        return json.length() <= 40 ? json : json.substring(0, 37) + "...";
    }
}
