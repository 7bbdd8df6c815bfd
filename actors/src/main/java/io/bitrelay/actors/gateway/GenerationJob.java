package io.bitrelay.actors.gateway;

import io.bitrelay.runtime.generate.SamplingParams;

/**
 * One sequence to generate, in token ids: what the gateway hands to a {@link GenerationBackend} after
 * tokenizing and validating an HTTP request.
 *
 * @param requestId    unique per request (the gateway's "cmpl-…" id)
 * @param promptTokens the tokenized prompt, BOS included as the tokenizer adds it
 * @param maxNewTokens new tokens at most; prompt + maxNewTokens fits the model's context (checked before)
 * @param stopOnEos    stop when the model emits its EOS token
 */
public record GenerationJob(String requestId, int[] promptTokens, int maxNewTokens, SamplingParams sampling,
                            boolean stopOnEos) {
}
