package io.bitrelay.actors.gateway;

import java.util.Arrays;
import java.util.function.Function;

/**
 * Turns one sequence's generated token ids, as they arrive, into text deltas whose concatenation is the
 * decode of all of them. A byte-level BPE token can end in the middle of a multi-byte UTF-8 character, which
 * decodes to U+FFFD until the next token completes it, so a decoded text ending in U+FFFD is held back.
 * Only that last U+FFFD is held: lossy UTF-8 decoding (Rust's {@code from_utf8_lossy}, which the
 * tokenizer uses) turns an incomplete tail into exactly one U+FFFD and never revisits the bytes before
 * it, so everything up to it is final. That keeps a model that emits invalid bytes from stalling a stream.
 *
 * <p>Each push decodes only the window of ids since the last character boundary: once a window's text ends in
 * anything but U+FFFD its bytes ended on a whole character, so the decoder's state is clean there and the decode of
 * everything is the decode up to there followed by the decode of what comes after. The window is usually one token,
 * so a token costs one short decode, not a decode of the sequence so far (which made a 128-token stream cost 64 ids
 * a token on average, on the gateway's one event thread, for every stream at once).
 */
public final class IncrementalDetokenizer {
    private static final char REPLACEMENT = '\uFFFD';

    private final Function<int[], String> decoder;
    private int[] tokens = new int[16];
    private int count;
    /** Where the current window starts: the ids before it decoded to text that ended on a whole character. */
    private int windowStart;
    /** Characters of the current window's text already emitted. */
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
        String text = decoder.apply(Arrays.copyOfRange(tokens, windowStart, count));
        if (!text.isEmpty() && text.charAt(text.length() - 1) == REPLACEMENT) {
            return take(text.substring(0, text.length() - 1));
        }
        String delta = take(text);
        windowStart = count; // a whole character ends here: the next window starts clean
        emittedChars = 0;
        return delta;
    }

    /**
     * The text still held back when the sequence ends: a character that never completed stays U+FFFD,
     * as a decode of the whole sequence shows it.
     */
    public String flush() {
        return count == windowStart ? "" : take(decoder.apply(Arrays.copyOfRange(tokens, windowStart, count)));
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
