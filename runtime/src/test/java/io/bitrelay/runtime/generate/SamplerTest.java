package io.bitrelay.runtime.generate;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {
    private static final float[] LOGITS = {1f, 3f, 2.5f, -1f, 3f, 0f};

    @Test
    void shouldPickFirstMaximumWhenGreedy() {
        assertEquals(1, new Sampler(SamplingParams.greedy()).next(LOGITS));
    }

    @Test
    void shouldRepeatTheSameSamplesForTheSameSeed() {
        Sampler a = new Sampler(new SamplingParams(1f, 0, 1f, 42));
        Sampler b = new Sampler(new SamplingParams(1f, 0, 1f, 42));
        for (int i = 0; i < 100; i++) {
            assertEquals(a.next(LOGITS), b.next(LOGITS));
        }
    }

    @Test
    void shouldKeepOnlyTopKAndTopP() {
        Sampler topK = new Sampler(new SamplingParams(1f, 1, 1f, 7));
        Sampler topP = new Sampler(new SamplingParams(1f, 0, 0.01f, 7));
        Sampler topThree = new Sampler(new SamplingParams(5f, 3, 1f, 7));
        for (int i = 0; i < 200; i++) {
            assertEquals(1, topK.next(LOGITS));
            assertEquals(1, topP.next(LOGITS));
            int token = topThree.next(LOGITS);
            assertTrue(token == 1 || token == 4 || token == 2, "top-3 sampled " + token);
        }
    }

    @Test
    void shouldFollowTheSoftmaxDistribution() {
        float[] logits = {0f, (float) Math.log(3)}; // p = 1/4, 3/4
        Sampler sampler = new Sampler(new SamplingParams(1f, 0, 1f, 3));
        int ones = 0;
        int draws = 20_000;
        for (int i = 0; i < draws; i++) {
            ones += sampler.next(logits);
        }
        assertEquals(0.75, ones / (double) draws, 0.02);
    }

    /**
     * The primitive-key sort must order candidates exactly as the comparator it replaced (descending logit, ties by
     * lower id, -0.0 tying 0.0): the same seed then yields the same tokens, over logits full of ties and signs.
     */
    @Test
    void shouldSampleLikeTheComparatorOrder() {
        java.util.SplittableRandom data = new java.util.SplittableRandom(11);
        for (int round = 0; round < 20; round++) {
            float[] logits = new float[3000];
            for (int i = 0; i < logits.length; i++) {
                int kind = data.nextInt(10);
                logits[i] = kind == 0 ? 0f : kind == 1 ? -0f : (float) Math.round(data.nextGaussian() * 8) / 4f;
            }
            SamplingParams params = new SamplingParams(0.5f + round * 0.1f, round % 3 == 0 ? 0 : 40 * round, round % 2 == 0 ? 1f : 0.9f, round);
            Sampler sampler = new Sampler(params);
            java.util.SplittableRandom reference = new java.util.SplittableRandom(params.seed());
            for (int draw = 0; draw < 50; draw++) {
                assertEquals(comparatorSample(logits, params, reference), sampler.next(logits), "round " + round + " draw " + draw);
            }
        }
    }

    /** The sampler as it was written with a boxed comparator, kept as the reference for its order. */
    private static int comparatorSample(float[] logits, SamplingParams params, java.util.SplittableRandom random) {
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < logits.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> logits[a] != logits[b] ? Float.compare(logits[b], logits[a]) : Integer.compare(a, b));
        int candidates = params.topK() > 0 ? Math.min(params.topK(), logits.length) : logits.length;
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

    @Test
    void shouldRejectBadParameters() {
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(-1f, 0, 1f, 0));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1f, -2, 1f, 0));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1f, 0, 0f, 0));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(Float.NaN, 0, 1f, 0));
    }
}
