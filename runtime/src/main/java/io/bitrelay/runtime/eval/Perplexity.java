package io.bitrelay.runtime.eval;

import io.bitrelay.runtime.model.opt.OptModel;

import java.util.List;

/**
 * Perplexity the standard way (Hugging Face's "perplexity of fixed-length models" with stride = window,
 * as the SmoothQuant and GPTQ evaluations do it): the tokenized text is cut into non-overlapping windows
 * ({@link TokenWindows}), each window runs from an empty cache, every next-token prediction inside a
 * window is scored ({@code len − 1} per window), and PPL = exp(mean negative log-likelihood).
 */
public final class Perplexity {
    private Perplexity() {
    }

    /**
     * @param windows         windows scored
     * @param predictedTokens next-token predictions scored, windows × (len − 1)
     * @param meanNll         mean negative log-likelihood per prediction, nats
     */
    public record Result(double perplexity, double meanNll, int windows, long predictedTokens, double seconds) {
    }

    /** Scores the first {@code maxWindows} windows (≤ 0: all) of {@code tokens}. */
    public static Result evaluate(OptModel model, int[] tokens, int windowLength, int maxWindows, Progress progress) {
        if (windowLength > model.config().maxPositions()) {
            throw new IllegalArgumentException("window of " + windowLength + " tokens exceeds the model's context of "
                    + model.config().maxPositions());
        }
        List<int[]> windows = TokenWindows.split(tokens, windowLength, maxWindows);
        if (windows.isEmpty()) {
            throw new IllegalArgumentException("the text has " + tokens.length + " tokens, fewer than one window of "
                    + windowLength);
        }
        long start = System.nanoTime();
        double nll = 0;
        long predicted = 0;
        try {
            for (int i = 0; i < windows.size(); i++) {
                nll += windowNll(model, windows.get(i));
                predicted += windowLength - 1;
                progress.update(i + 1, windows.size());
            }
        } finally {
            progress.finish();
        }
        double mean = nll / predicted;
        return new Result(Math.exp(mean), mean, windows.size(), predicted, (System.nanoTime() - start) / 1e9);
    }

    /** Σ −log p(window[t+1] | window[0..t]) for t in [0, len − 1), in nats, summed in row order. */
    public static double windowNll(OptModel model, int[] window) {
        double nll = 0;
        for (TokenScore score : PromptScoring.scoreWhole(model, window, 0)) {
            nll -= score.logprob();
        }
        return nll;
    }

    /** −log softmax(logits)[target]. */
    public static double negativeLogLikelihood(float[] logits, int target) {
        return -LogSoftmax.logprob(logits, target);
    }
}
