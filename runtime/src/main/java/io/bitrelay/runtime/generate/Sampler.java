package io.bitrelay.runtime.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Picks tokens from logits for one sequence; owns that sequence's random stream. */
public final class Sampler {
    private final SamplingParams params;
    private final SplittableRandom random;

    public Sampler(SamplingParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    public int next(float[] logits) {
        if (params.isGreedy()) {
            return argmax(logits);
        }
        int vocab = logits.length;
        Integer[] order = new Integer[vocab];
        for (int i = 0; i < vocab; i++) {
            order[i] = i;
        }
        // Descending by logit, ties by lower id, so the candidate set is deterministic.
        Arrays.sort(order, (a, b) -> logits[a] != logits[b] ? Float.compare(logits[b], logits[a]) : Integer.compare(a, b));
        int candidates = params.topK() > 0 ? Math.min(params.topK(), vocab) : vocab;
        double max = logits[order[0]] / params.temperature();
        double[] weights = new double[candidates];
        double total = 0;
        for (int i = 0; i < candidates; i++) {
            weights[i] = Math.exp(logits[order[i]] / params.temperature() - max);
            total += weights[i];
        }
        if (params.topP() < 1f) {
            double cumulative = 0;
            int keep = candidates;
            for (int i = 0; i < candidates; i++) {
                cumulative += weights[i] / total;
                if (cumulative >= params.topP()) {
                    keep = i + 1;
                    break;
                }
            }
            candidates = keep;
            total = 0;
            for (int i = 0; i < candidates; i++) {
                total += weights[i];
            }
        }
        double pick = random.nextDouble() * total;
        for (int i = 0; i < candidates; i++) {
            pick -= weights[i];
            if (pick < 0) {
                return order[i];
            }
        }
        return order[candidates - 1];
    }

    /** First index of the largest logit, as torch.argmax picks it. */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }
}
