package io.bitrelay.deploy.bench;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The kinds of malformed request a hostile or broken client sends to /v1/completions (issue 16): bad JSON, wrong
 * types, values out of range, invalid UTF-8, a wrong Content-Type, a wrong path or method. Each must get a 4xx in
 * OpenAI's error JSON.
 */
final class MalformedRequests {
    /** @param contentType null for none */
    record Kind(String name, String method, String path, String contentType, byte[] body) {
    }

    private MalformedRequests() {
    }

    static List<Kind> all() {
        return List.of(
                json("truncated JSON", "{\"prompt\": \"hi\", \"max_tokens\": "),
                json("not an object", "[1, 2, 3]"),
                json("empty body", ""),
                json("trailing garbage", "{\"prompt\": \"hi\"} {\"prompt\": \"again\"}"),
                json("duplicate key", "{\"prompt\": \"hi\", \"prompt\": \"ho\"}"),
                json("empty prompt", "{\"prompt\": \"\", \"max_tokens\": 4}"),
                json("max_tokens a word", "{\"prompt\": \"hi\", \"max_tokens\": \"four\"}"),
                json("max_tokens negative", "{\"prompt\": \"hi\", \"max_tokens\": -1}"),
                json("max_tokens over the context", "{\"prompt\": \"hi\", \"max_tokens\": 100000}"),
                json("temperature negative", "{\"prompt\": \"hi\", \"temperature\": -1}"),
                json("top_p zero", "{\"prompt\": \"hi\", \"top_p\": 0}"),
                json("negative token id", "{\"prompt\": [1, -2], \"max_tokens\": 4}"),
                json("token id outside the vocabulary", "{\"prompt\": [1, 99999999], \"max_tokens\": 4}"),
                json("arrays of prompts", "{\"prompt\": [[1], [2]], \"max_tokens\": 4}"),
                json("five stop strings", "{\"prompt\": \"hi\", \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}"),
                json("logprobs 6", "{\"prompt\": \"hi\", \"logprobs\": 6}"),
                json("another model", "{\"model\": \"gpt-4\", \"prompt\": \"hi\"}"),
                new Kind("invalid UTF-8", "POST", "/v1/completions", "application/json",
                        concat("{\"prompt\": \"", new byte[]{(byte) 0xc3, (byte) 0x28, (byte) 0xff}, "\"}")),
                new Kind("text/plain body", "POST", "/v1/completions", "text/plain", bytes("{\"prompt\": \"hi\"}")),
                new Kind("no Content-Type", "POST", "/v1/completions", null, bytes("{\"prompt\": \"hi\"}")),
                new Kind("unknown path", "POST", "/v1/chat/nothing", "application/json", bytes("{\"prompt\": \"hi\"}")),
                new Kind("GET on completions", "GET", "/v1/completions", null, new byte[0]));
    }

    private static Kind json(String name, String body) {
        return new Kind(name, "POST", "/v1/completions", "application/json", bytes(body));
    }

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] concat(String before, byte[] middle, String after) {
        byte[] head = bytes(before);
        byte[] tail = bytes(after);
        byte[] all = new byte[head.length + middle.length + tail.length];
        System.arraycopy(head, 0, all, 0, head.length);
        System.arraycopy(middle, 0, all, head.length, middle.length);
        System.arraycopy(tail, 0, all, head.length + middle.length, tail.length);
        return all;
    }
}
