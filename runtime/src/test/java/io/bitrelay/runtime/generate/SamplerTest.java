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

    @Test
    void shouldRejectBadParameters() {
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(-1f, 0, 1f, 0));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1f, -2, 1f, 0));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1f, 0, 0f, 0));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(Float.NaN, 0, 1f, 0));
    }
}
