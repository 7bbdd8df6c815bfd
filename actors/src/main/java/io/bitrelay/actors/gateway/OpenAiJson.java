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
        ObjectNode root = head(id, created, model);
        choice(root.putArray("choices"), text, finishReason);
        usage(root, usage);
        return write(root);
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
        ObjectNode root = JSON.createObjectNode();
        root.put("object", "list");
        ObjectNode entry = root.putArray("data").addObject();
        entry.put("id", model.id());
        entry.put("object", "model");
        entry.put("created", created);
        entry.put("owned_by", "bitrelay");
        entry.put("context_length", model.contextLength());
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

    private static void choice(ArrayNode choices, String text, String finishReason) {
        ObjectNode choice = choices.addObject();
        choice.put("index", 0);
        choice.put("text", text);
        choice.putNull("logprobs");
        choice.put("finish_reason", finishReason);
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
