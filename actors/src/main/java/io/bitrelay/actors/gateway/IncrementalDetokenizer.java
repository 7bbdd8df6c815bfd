package io.bitrelay.actors.gateway;

import java.util.Arrays;
import java.util.function.Function;

/**
 * Turns one sequence's generated token ids, as they arrive, into text deltas whose concatenation is the
 * decode of all of them. Each push decodes every id so far and emits only the suffix beyond what was
 * already emitted. A byte-level BPE token can end in the middle of a multi-byte UTF-8 character, which
 * decodes to U+FFFD until the next token completes it, so a decoded text ending in U+FFFD is held back.
 * Only that last U+FFFD is held: lossy UTF-8 decoding (Rust's {@code from_utf8_lossy}, which the
 * tokenizer uses) turns an incomplete tail into exactly one U+FFFD and never revisits the bytes before
 * it, so everything up to it is final. That keeps a model that emits invalid bytes from stalling a stream.
 * Cost per token is one decode of the sequence so far (at most the model's context).
 */
public final class IncrementalDetokenizer {
    private static final char REPLACEMENT = '\uFFFD';

    private final Function<int[], String> decoder;
    private int[] tokens = new int[16];
    private int count;
    private int emittedChars;

    /** @param decoder ids → text, e.g. {@code OptTokenizer::decode} (special tokens skipped) */
    public IncrementalDetokenizer(Function<int[], String> decoder) {
        this.decoder = decoder;
    }

    /** Adds a token; returns the text it completes ("" when nothing new is final yet). */
    public String push(int token) {
        if (count == tokens.length) {
            tokens = Arrays.copyOf(tokens, count * 2);
        }
        tokens[count++] = token;
        String text = decoder.apply(Arrays.copyOf(tokens, count));
        if (!text.isEmpty() && text.charAt(text.length() - 1) == REPLACEMENT) {
            return take(text.substring(0, text.length() - 1));
        }
        return take(text);
    }

    /**
     * The text still held back when the sequence ends: a character that never completed stays U+FFFD,
     * as a decode of the whole sequence shows it.
     */
    public String flush() {
        return count == 0 ? "" : take(decoder.apply(Arrays.copyOf(tokens, count)));
    }

    /** Tokens pushed so far. */
    public int tokenCount() {
        return count;
    }

    private String take(String text) {
        // Byte-level decoding only ever appends; a shorter text would mean a decoder that rewrites its
        // past, and then holding still is the only answer that never repeats text.
        if (text.length() <= emittedChars) {
            return "";
        }
        String delta = text.substring(emittedChars);
        emittedChars = text.length();
        return delta;
    }
}
