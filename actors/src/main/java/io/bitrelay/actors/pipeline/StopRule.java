package io.bitrelay.actors.pipeline;

import io.bitrelay.actors.serialization.ClusterMessage;

/**
 * When a generating sequence stops, in the terms both ends of the decode loop need: the first stage, which feeds
 * each sampled token straight back in, and the coordinator's scheduler, which tells the client why it ended.
 * One record so the two cannot disagree about the last token.
 *
 * @param maxNewTokens new tokens at most (≥ 1)
 * @param minTokens    an EOS among the first minTokens generated tokens does not stop the sequence (vLLM's min_tokens)
 * @param stopOnEos    stop at the model's EOS token (off for OpenAI's ignore_eos)
 * @param eosTokenId   the model's EOS token id
 */
public record StopRule(int maxNewTokens, int minTokens, boolean stopOnEos, int eosTokenId) implements ClusterMessage {
    public StopRule {
        if (maxNewTokens < 1 || minTokens < 0 || minTokens > maxNewTokens) {
            throw new IllegalArgumentException("a stop rule needs maxNewTokens >= 1 and minTokens in 0..maxNewTokens, got "
                    + maxNewTokens + ", " + minTokens);
        }
    }

    /** Whether {@code token}, the {@code generated}-th new token (1-based), is an EOS that ends the sequence. */
    public boolean endsWithEos(int token, int generated) {
        return stopOnEos && token == eosTokenId && generated > minTokens;
    }

    /** Whether the sequence ends after its {@code generated}-th new token, for either reason. */
    public boolean ends(int token, int generated) {
        return endsWithEos(token, generated) || generated >= maxNewTokens;
    }
}
