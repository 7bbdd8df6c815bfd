package io.bitrelay.actors.gateway;

import io.bitrelay.runtime.generate.SamplingParams;

/**
 * One sequence to generate, or one prompt to score, in token ids: what the gateway hands to a
 * {@link GenerationBackend} after tokenizing and validating an HTTP request.
 *
 * @param requestId    unique per request (the gateway's "cmpl-…" id)
 * @param promptTokens the tokenized prompt, BOS included as the tokenizer adds it
 * @param maxNewTokens new tokens at most; prompt + maxNewTokens fits the model's context (checked before);
 *                     0 exactly when the job scores its prompt
 * @param stopOnEos    stop when the model emits its EOS token
 * @param scorePrompt  score the prompt instead of generating (OpenAI's echo + logprobs with max_tokens 0): the
 *                     listener gets log p(prompt[t + 1] | prompt[0..t]) for every t, chunk by chunk, then
 *                     finishes with MAX_TOKENS
 * @param logprobs     top alternatives wanted with every scored position or sampled token, or −1 for none
 */
public record GenerationJob(String requestId, int[] promptTokens, int maxNewTokens, SamplingParams sampling,
                            boolean stopOnEos, boolean scorePrompt, int logprobs) {
    public GenerationJob {
        if (scorePrompt != (maxNewTokens == 0)) {
            throw new IllegalArgumentException("a job scores its prompt exactly when it generates nothing: scorePrompt "
                    + scorePrompt + ", maxNewTokens " + maxNewTokens);
        }
        if (scorePrompt && logprobs < 0) {
            throw new IllegalArgumentException("a scoring job needs logprobs >= 0, got " + logprobs);
        }
    }

    /** A generation job without log-probabilities. */
    public GenerationJob(String requestId, int[] promptTokens, int maxNewTokens, SamplingParams sampling, boolean stopOnEos) {
        this(requestId, promptTokens, maxNewTokens, sampling, stopOnEos, false, -1);
    }

    /** Scores {@code promptTokens} with {@code topLogprobs} alternatives per position; generates nothing. */
    public static GenerationJob scoring(String requestId, int[] promptTokens, int topLogprobs) {
        return new GenerationJob(requestId, promptTokens, 0, SamplingParams.greedy(), false, true, topLogprobs);
    }
}
