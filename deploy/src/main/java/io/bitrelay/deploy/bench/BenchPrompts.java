package io.bitrelay.deploy.bench;

import io.bitrelay.deploy.cluster.CompletionClient;
import io.bitrelay.runtime.tokenizer.OptTokenizer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Prompts of exactly a given number of token ids, the same on every run and for every peer: the tokenizer's
 * special prefix (BOS) followed by the token ids of a fixed text, read cyclically from a different offset per
 * prompt so that no two requests share a prefix a cache could exploit.
 */
public final class BenchPrompts {
    private static final String TEXT = String.join(" ", CompletionClient.SAMPLE_PROMPTS);
    private static final int OFFSET_STRIDE = 7;

    private BenchPrompts() {
    }

    public static List<int[]> of(Path checkpoint, int count, int length) {
        try (OptTokenizer tokenizer = OptTokenizer.load(checkpoint)) {
            int[] withSpecial = tokenizer.encode(TEXT);
            int[] text = tokenizer.encodeWithoutSpecialTokens(TEXT);
            return of(Arrays.copyOf(withSpecial, withSpecial.length - text.length), text, count, length);
        }
    }

    static List<int[]> of(int[] prefix, int[] text, int count, int length) {
        if (length <= prefix.length) {
            throw new IllegalArgumentException("prompts need more than the tokenizer's " + prefix.length
                    + " special token(s), got a length of " + length);
        }
        List<int[]> prompts = new ArrayList<>();
        for (int p = 0; p < count; p++) {
            int[] prompt = Arrays.copyOf(prefix, length);
            for (int i = prefix.length; i < length; i++) {
                prompt[i] = text[(p * OFFSET_STRIDE + i - prefix.length) % text.length];
            }
            prompts.add(prompt);
        }
        return prompts;
    }
}
