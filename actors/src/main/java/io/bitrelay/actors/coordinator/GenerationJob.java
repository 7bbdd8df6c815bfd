package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.pipeline.StopRule;
import io.bitrelay.runtime.generate.SamplingParams;

/**
 * One sequence to generate, or one prompt to score, in token ids: what the gateway hands to a
 * generation backend after tokenizing and validating an HTTP request.
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
 * @param minTokens    with stopOnEos, an EOS among the first minTokens generated tokens does not stop the job (it is
 *                     passed on as an ordinary token), as vLLM's min_tokens
 */
public record GenerationJob(String requestId, int[] promptTokens, int maxNewTokens, SamplingParams sampling,
                            boolean stopOnEos, boolean scorePrompt, int logprobs, int minTokens) {
    public GenerationJob {
        if (minTokens < 0 || (minTokens > maxNewTokens && !scorePrompt)) {
            throw new IllegalArgumentException("minTokens must be in 0.." + maxNewTokens + ", got " + minTokens);
        }
        if (scorePrompt != (maxNewTokens == 0)) {
            throw new IllegalArgumentException("a job scores its prompt exactly when it generates nothing: scorePrompt "
                    + scorePrompt + ", maxNewTokens " + maxNewTokens);
        }
        if (scorePrompt && logprobs < 0) {
            throw new IllegalArgumentException("a scoring job needs logprobs >= 0, got " + logprobs);
        }
    }

    /** A job without a minimum length. */
    public GenerationJob(String requestId, int[] promptTokens, int maxNewTokens, SamplingParams sampling,
                         boolean stopOnEos, boolean scorePrompt, int logprobs) {
        this(requestId, promptTokens, maxNewTokens, sampling, stopOnEos, scorePrompt, logprobs, 0);
    }

    /** A generation job without log-probabilities. */
    public GenerationJob(String requestId, int[] promptTokens, int maxNewTokens, SamplingParams sampling, boolean stopOnEos) {
        this(requestId, promptTokens, maxNewTokens, sampling, stopOnEos, false, -1);
    }

    /**
     * When this generating job stops, as the first stage's decode loop and the {@link Scheduler} both apply it (the
     * single-process backend runs the same two); null for a scoring job.
     */
    public StopRule stopRule(int eosTokenId) {
        return scorePrompt ? null : new StopRule(maxNewTokens, minTokens, stopOnEos, eosTokenId);
    }

    /** Scores {@code promptTokens} with {@code topLogprobs} alternatives per position; generates nothing. */
    public static GenerationJob scoring(String requestId, int[] promptTokens, int topLogprobs) {
        return new GenerationJob(requestId, promptTokens, 0, SamplingParams.greedy(), false, true, topLogprobs);
    }
}
