package io.bitrelay.actors.gateway;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** Response bodies in the shapes of OpenAI's API (legacy completions, models, errors). */
final class OpenAiJson {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Token counts of one completion. */
    record Usage(int promptTokens, int completionTokens) {
    }

    private OpenAiJson() {
    }

    static String completion(String id, long created, String model, String text, String finishReason, Usage usage) {
        return completion(id, created, model, text, finishReason, usage, null);
    }

    /** A whole completion; {@code logprobs} null writes {@code "logprobs": null}. */
    static String completion(String id, long created, String model, String text, String finishReason, Usage usage,
                             CompletionLogprobs logprobs) {
        ObjectNode root = head(id, created, model);
        ObjectNode choice = choice(root.putArray("choices"), text, finishReason);
        if (logprobs != null) {
            logprobs(choice.putObject("logprobs"), logprobs);
        }
        usage(root, usage);
        return write(root);
    }

    private static void logprobs(ObjectNode node, CompletionLogprobs logprobs) {
        ArrayNode tokens = node.putArray("tokens");
        logprobs.tokens.forEach(tokens::add);
        ArrayNode tokenLogprobs = node.putArray("token_logprobs");
        for (Double logprob : logprobs.tokenLogprobs) {
            if (logprob == null) {
                tokenLogprobs.addNull();
            } else {
                tokenLogprobs.add(logprob);
            }
        }
        if (logprobs.withTop()) {
            ArrayNode top = node.putArray("top_logprobs");
            for (java.util.Map<String, Double> alternatives : logprobs.topLogprobs) {
                if (alternatives == null) {
                    top.addNull();
                } else {
                    ObjectNode entry = top.addObject();
                    alternatives.forEach(entry::put);
                }
            }
        } else {
            node.putNull("top_logprobs");
        }
        ArrayNode offsets = node.putArray("text_offset");
        logprobs.textOffsets.forEach(offsets::add);
    }

    /** One streamed piece; {@code finishReason} null until the last. */
    static String chunk(String id, long created, String model, String text, String finishReason) {
        ObjectNode root = head(id, created, model);
        choice(root.putArray("choices"), text, finishReason);
        return write(root);
    }

    /** The extra last chunk of {@code stream_options.include_usage}: no choices, the usage. */
    static String usageChunk(String id, long created, String model, Usage usage) {
        ObjectNode root = head(id, created, model);
        root.putArray("choices");
        usage(root, usage);
        return write(root);
    }

    static String error(String message, String type, String param, String code) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode error = root.putObject("error");
        error.put("message", message);
        error.put("type", type);
        error.put("param", param);
        error.put("code", code);
        return write(root);
    }

    static String models(ServedModel model, long created) {
        return models(model, created, java.util.Map.of());
    }

    /** The one served model; {@code details} (what serves it) go under the entry's "bitrelay" extension. */
    static String models(ServedModel model, long created, java.util.Map<String, String> details) {
        ObjectNode root = JSON.createObjectNode();
        root.put("object", "list");
        ObjectNode entry = root.putArray("data").addObject();
        entry.put("id", model.id());
        entry.put("object", "model");
        entry.put("created", created);
        entry.put("owned_by", "bitrelay");
        entry.put("context_length", model.contextLength());
        if (!details.isEmpty()) {
            ObjectNode extension = entry.putObject("bitrelay");
            details.forEach(extension::put);
        }
        return write(root);
    }

    static String status(String status) {
        return write(JSON.createObjectNode().put("status", status));
    }

    private static ObjectNode head(String id, long created, String model) {
        ObjectNode root = JSON.createObjectNode();
        root.put("id", id);
        root.put("object", "text_completion");
        root.put("created", created);
        root.put("model", model);
        return root;
    }

    private static ObjectNode choice(ArrayNode choices, String text, String finishReason) {
        ObjectNode choice = choices.addObject();
        choice.put("index", 0);
        choice.put("text", text);
        choice.putNull("logprobs");
        choice.put("finish_reason", finishReason);
        return choice;
    }

    private static void usage(ObjectNode root, Usage usage) {
        ObjectNode node = root.putObject("usage");
        node.put("prompt_tokens", usage.promptTokens());
        node.put("completion_tokens", usage.completionTokens());
        node.put("total_tokens", usage.promptTokens() + usage.completionTokens());
    }

    private static String write(ObjectNode node) {
        try {
            return JSON.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write a JSON tree", e);
        }
    }
}
