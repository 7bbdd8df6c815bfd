package io.bitrelay.runtime.eval;

/**
 * How likely the model found one token at one position: its natural-log probability under the full
 * softmax over the vocabulary, and optionally the most likely alternatives, as OpenAI's {@code logprobs}
 * report them.
 *
 * @param token        the token scored (a prompt's next token, or the one sampled)
 * @param logprob      log p(token | prefix), nats, ≤ 0
 * @param topTokens    the {@code k} most likely tokens, most likely first (empty when none were asked for)
 * @param topLogprobs  their log-probabilities, same order
 */
public record TokenScore(int token, double logprob, int[] topTokens, double[] topLogprobs) {
    public TokenScore {
        if (topTokens.length != topLogprobs.length) {
            throw new IllegalArgumentException("top tokens and top logprobs differ in length: " + topTokens.length
                    + " vs " + topLogprobs.length);
        }
    }

    /** Arrays compare by content, so a score equals its copy sent across JVMs. */
    @Override
    public boolean equals(Object other) {
        return other instanceof TokenScore s && s.token == token && Double.compare(s.logprob, logprob) == 0
                && java.util.Arrays.equals(s.topTokens, topTokens) && java.util.Arrays.equals(s.topLogprobs, topLogprobs);
    }

    @Override
    public int hashCode() {
        return (Integer.hashCode(token) * 31 + Double.hashCode(logprob)) * 31 + java.util.Arrays.hashCode(topTokens);
    }
}
