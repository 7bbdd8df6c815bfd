package io.bitrelay.runtime.eval;

/**
 * Log-probabilities from one row of logits: log softmax(logits)[t] = logits[t] − logsumexp(logits), in
 * double with the maximum taken out. Perplexity, prompt scoring on the last pipeline stage and the local
 * backend's logprobs all use it, so the three agree to the last bit on the same logits.
 */
public final class LogSoftmax {
    private LogSoftmax() {
    }

    /** log Σ exp(logits), computed stably. */
    public static double logSumExp(float[] logits) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : logits) {
            sum += Math.exp((double) v - max);
        }
        return Math.log(sum) + max;
    }

    /** log p(token) under softmax(logits). */
    public static double logprob(float[] logits, int token) {
        checkToken(logits, token);
        return logits[token] - logSumExp(logits);
    }

    /** {@code token}'s log-probability and the {@code top} most likely tokens (ties: lower id first). */
    public static TokenScore score(float[] logits, int token, int top) {
        checkToken(logits, token);
        if (top < 0 || top > logits.length) {
            throw new IllegalArgumentException("top must be in [0, " + logits.length + "], got " + top);
        }
        double logSumExp = logSumExp(logits);
        int[] topTokens = topIndices(logits, top);
        double[] topLogprobs = new double[top];
        for (int i = 0; i < top; i++) {
            topLogprobs[i] = logits[topTokens[i]] - logSumExp;
        }
        return new TokenScore(token, logits[token] - logSumExp, topTokens, topLogprobs);
    }

    /** The k largest entries by insertion into a sorted run of k: k is at most 20, the vocabulary ~50k. */
    static int[] topIndices(float[] values, int k) {
        int[] best = new int[k];
        int filled = 0;
        for (int i = 0; i < values.length; i++) {
            float v = values[i];
            if (filled == k && (k == 0 || v <= values[best[k - 1]])) {
                continue;
            }
            int at = filled < k ? filled++ : k - 1;
            while (at > 0 && values[best[at - 1]] < v) {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = i;
        }
        return best;
    }

    private static void checkToken(float[] logits, int token) {
        if (token < 0 || token >= logits.length) {
            throw new IllegalArgumentException("token " + token + " is outside the vocabulary of " + logits.length);
        }
    }
}
