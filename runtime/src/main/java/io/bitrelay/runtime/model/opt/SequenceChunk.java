package io.bitrelay.runtime.model.opt;

/**
 * The tokens one sequence contributes to a forward step (its whole prompt at prefill, one token at
 * decode) and its cache; the chunk's first token takes position {@code cache.length()}.
 */
public record SequenceChunk(int[] tokens, KvCache cache) {
    public int length() {
        return tokens.length;
    }
}
