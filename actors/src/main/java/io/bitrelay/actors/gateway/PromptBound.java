package io.bitrelay.actors.gateway;

import java.util.OptionalInt;

/**
 * Refuses a prompt that cannot fit the context before it is tokenized: tokenizing a prompt of megabytes took
 * seconds and gigabytes only to refuse it (issue 16). A token covers at most {@code maxBytesPerToken} bytes of
 * text ({@link io.bitrelay.runtime.tokenizer.OptTokenizer#maxBytesPerToken()}), so a prompt of {@code b} UTF-8
 * bytes has at least {@code 1 + ceil(b / maxBytesPerToken)} tokens with the {@code </s>} OPT prepends. Only prompts
 * that are certainly too long are refused here; the exact count of the rest is checked after tokenizing them, so
 * the context boundary stays exact.
 */
final class PromptBound {
    /** The {@code </s>} the tokenizer prepends to every prompt. */
    private static final int PREPENDED_TOKENS = 1;

    private final int contextLength;
    private final int maxBytesPerToken; // 0: no bound, every prompt is tokenized

    PromptBound(int contextLength, OptionalInt maxBytesPerToken) {
        this.contextLength = contextLength;
        this.maxBytesPerToken = maxBytesPerToken.orElse(0);
    }

    /** @throws InvalidRequestException when the prompt alone has more tokens than the context leaves room for */
    void check(String prompt, int maxTokens) {
        if (maxBytesPerToken == 0) {
            return;
        }
        long bytes = utf8Length(prompt);
        long fewestTokens = PREPENDED_TOKENS + (bytes + maxBytesPerToken - 1) / maxBytesPerToken;
        if (fewestTokens + maxTokens > contextLength) {
            throw new InvalidRequestException("This model's maximum context length is " + contextLength + " tokens,"
                    + " however your prompt of " + bytes + " bytes has at least " + fewestTokens + " tokens (a token"
                    + " covers at most " + maxBytesPerToken + " bytes) and you asked for " + maxTokens
                    + " for the completion. Please reduce your prompt or max_tokens.", "prompt");
        }
    }

    /** UTF-8 length without encoding a copy; the text came from valid UTF-8, so surrogates come in pairs. */
    static long utf8Length(String text) {
        long bytes = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c < 0x80) {
                bytes += 1;
            } else if (c < 0x800) {
                bytes += 2;
            } else if (Character.isHighSurrogate(c)) {
                bytes += 4;
                i++;
            } else {
                bytes += 3;
            }
        }
        return bytes;
    }
}
