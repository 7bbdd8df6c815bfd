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
        long[] order = descendingOrder(logits);
        int candidates = params.topK() > 0 ? Math.min(params.topK(), vocab) : vocab;
        double max = logits[id(order[0])] / params.temperature();
        double[] weights = SCRATCH.get().weights(candidates);
        double total = 0;
        for (int i = 0; i < candidates; i++) {
            weights[i] = Math.exp(logits[id(order[i])] / params.temperature() - max);
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
                return id(order[i]);
            }
        }
        return id(order[candidates - 1]);
    }

    /**
     * Token ids by descending logit, ties by lower id, as one primitive sort: each key holds the logit's bits
     * flipped into descending integer order above the id, so sorting 50k candidates allocates nothing and
     * boxes nothing (a comparator over Integer[] cost milliseconds per token).
     */
    private static long[] descendingOrder(float[] logits) {
        long[] keys = SCRATCH.get().keys(logits.length);
        for (int i = 0; i < logits.length; i++) {
            int bits = Float.floatToIntBits(logits[i] + 0f); // + 0f: -0.0 and 0.0 tie, as == has them
            int ascending = bits ^ ((bits >> 31) & 0x7fffffff);
            keys[i] = ((long) ~ascending << 32) | i;
        }
        Arrays.sort(keys, 0, logits.length);
        return keys;
    }

    private static int id(long key) {
        return (int) key;
    }

    /** Per-thread sort and weight buffers: a stage's compute thread samples every sequence of a step in turn. */
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static final class Scratch {
        private long[] keys = new long[0];
        private double[] weights = new double[0];

        long[] keys(int length) {
            if (keys.length < length) {
                keys = new long[length];
            }
            return keys;
        }

        double[] weights(int length) {
            if (weights.length < length) {
                weights = new double[length];
            }
            return weights;
        }
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
