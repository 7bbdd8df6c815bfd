package io.bitrelay.runtime.eval;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Consecutive, non-overlapping windows of a token stream, as the standard perplexity evaluation (and
 * SmoothQuant/GPTQ-style calibration) cuts a tokenized corpus: window i is tokens [i·len, (i+1)·len);
 * a final partial window is dropped so every window has the same context length.
 */
public final class TokenWindows {
    private TokenWindows() {
    }

    /** Full windows in {@code tokenCount} tokens. */
    public static int available(int tokenCount, int windowLength) {
        if (windowLength < 2) {
            throw new IllegalArgumentException("window length must be at least 2 tokens, got " + windowLength);
        }
        return tokenCount / windowLength;
    }

    /** The first {@code min(maxWindows, available)} windows; maxWindows ≤ 0 means all. */
    public static List<int[]> split(int[] tokens, int windowLength, int maxWindows) {
        int count = available(tokens.length, windowLength);
        if (maxWindows > 0) {
            count = Math.min(count, maxWindows);
        }
        List<int[]> windows = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            windows.add(Arrays.copyOfRange(tokens, i * windowLength, (i + 1) * windowLength));
        }
        return windows;
    }
}
