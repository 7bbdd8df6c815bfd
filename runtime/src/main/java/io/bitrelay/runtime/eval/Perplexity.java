package io.bitrelay.runtime.eval;

import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.ops.cpu.CpuParallelism;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Perplexity the standard way (Hugging Face's "perplexity of fixed-length models" with stride = window,
 * as the SmoothQuant and GPTQ evaluations do it): the tokenized text is cut into non-overlapping windows
 * ({@link TokenWindows}), each window runs from an empty cache, every next-token prediction inside a
 * window is scored ({@code len − 1} per window), and PPL = exp(mean negative log-likelihood).
 */
public final class Perplexity {
    /** Logit rows materialised at once: 64 × a 50k vocabulary is 13 MB, not the 200 MB of a whole window. */
    private static final int LOGIT_ROWS_PER_BLOCK = 64;

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

    /** Σ −log p(window[t+1] | window[0..t]) for t in [0, len − 1), in nats. */
    public static double windowNll(OptModel model, int[] window) {
        double nll = 0;
        try (Arena step = Arena.ofShared(); KvCache cache = model.newCache()) {
            List<SequenceChunk> chunks = List.of(new SequenceChunk(window, cache));
            MemorySegment hidden = model.embed(chunks, step);
            model.runLayers(chunks, hidden, step);
            for (int first = 0; first < window.length - 1; first += LOGIT_ROWS_PER_BLOCK) {
                int count = Math.min(LOGIT_ROWS_PER_BLOCK, window.length - 1 - first);
                int[] rows = new int[count];
                for (int r = 0; r < count; r++) {
                    rows[r] = first + r;
                }
                float[][] logits;
                try (Arena block = Arena.ofShared()) {
                    logits = model.logits(hidden, rows, block);
                }
                double[] rowNll = new double[count];
                int target0 = first + 1;
                CpuParallelism.forEach(count, r -> rowNll[r] = negativeLogLikelihood(logits[r], window[target0 + r]));
                for (double v : rowNll) { // summed in row order, so the result does not depend on the thread count
                    nll += v;
                }
            }
        }
        return nll;
    }

    /** −log softmax(logits)[target] = logsumexp(logits) − logits[target], in double with the max taken out. */
    public static double negativeLogLikelihood(float[] logits, int target) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : logits) {
            sum += Math.exp((double) v - max);
        }
        return Math.log(sum) + max - logits[target];
    }
}
