package io.bitrelay.runtime.generate;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU port of the device sampler: greedy is Sampler.argmax, draws repeat for a (seed, counter), and over many
 * counters the draws follow Sampler's distribution, softmax(l / T) cut to the top-k (ties by lower index) and then
 * to the top-p prefix; cutting to one candidate is greedy.
 */
class DeviceSamplingReferenceTest {
    /** Ties at the top, at the top-k cut (index 2, 5, 6 share 1.5) and in the tail; FP16 values. */
    private static final float[] SMALL = {2f, 0.5f, 1.5f, 2f, -1f, 1.5f, 1.5f, 0.25f, 3f, -0.75f};
    private static final int DRAWS = 40_000;
    /** 5σ of a frequency near 1/2 over DRAWS draws: a correct sampler stays under it. */
    private static final double MAX_DEVIATION = 5 * Math.sqrt(0.25 / DRAWS);

    @Test
    void shouldBeSamplerArgmaxWhenGreedy() {
        SplittableRandom random = new SplittableRandom(3);
        for (int r = 0; r < 20; r++) {
            float[] row = fp16Row(random, 50_272);
            if (r % 2 == 0) {
                row[40_000] = row[Sampler.argmax(row)];  // a tied maximum later in the row
            }
            assertEquals(Sampler.argmax(row), DeviceSamplingReference.sample(row, 0f, 0, 1f, r, r), "row " + r);
        }
    }

    @Test
    void shouldRepeatTheDrawOfASeedAndCounter() {
        float[] row = fp16Row(new SplittableRandom(5), 50_272);
        int[] first = IntStream.range(0, 16).map(c -> DeviceSamplingReference.sample(row, 1f, 0, 1f, 11, c)).toArray();
        int[] again = IntStream.range(0, 16).map(c -> DeviceSamplingReference.sample(row, 1f, 0, 1f, 11, c)).toArray();
        assertArrayEquals(first, again);
        assertTrue(Arrays.stream(first).distinct().count() > 8, "counters give different draws: " + Arrays.toString(first));
        int otherSeed = DeviceSamplingReference.sample(row, 1f, 0, 1f, 12, 0);
        assertTrue(IntStream.range(0, 16).anyMatch(s -> DeviceSamplingReference.sample(row, 1f, 0, 1f, 100 + s, 0) != first[0])
                || otherSeed != first[0], "seeds give different draws");
    }

    @ParameterizedTest(name = "T={0} topK={1} topP={2}")
    @CsvSource({"1, 0, 1", "0.7, 0, 1", "1, 3, 1", "1, 2, 1", "1.5, 5, 1", "1, 0, 0.8", "0.8, 0, 0.5", "2, 6, 0.7",
            "1, 4, 0.9"})
    void shouldDrawFromSamplersDistribution(float temperature, int topK, float topP) {
        double[] expected = samplerDistribution(SMALL, temperature, topK, topP);
        int[] counts = new int[SMALL.length];
        for (int c = 0; c < DRAWS; c++) {
            counts[DeviceSamplingReference.sample(SMALL, temperature, topK, topP, 2024, c)]++;
        }
        for (int i = 0; i < SMALL.length; i++) {
            double observed = counts[i] / (double) DRAWS;
            int token = i;
            if (expected[i] == 0) {
                assertEquals(0, counts[i], () -> "token " + token + " is outside the kept set");
            } else {
                assertTrue(Math.abs(observed - expected[i]) < MAX_DEVIATION,
                        () -> "token " + token + ": drawn " + observed + ", expected " + expected[token]);
            }
        }
    }

    @Test
    void shouldBeGreedyWhenOneCandidateIsKept() {
        SplittableRandom random = new SplittableRandom(9);
        for (int r = 0; r < 6; r++) {
            float[] row = fp16Row(random, 50_272);
            int greedy = Sampler.argmax(row);
            assertEquals(greedy, DeviceSamplingReference.sample(row, 1f, 1, 1f, r, 7), "top-k 1, row " + r);
            assertEquals(greedy, DeviceSamplingReference.sample(row, 1.3f, 0, 1e-6f, r, 7), "tiny top-p, row " + r);
        }
        assertEquals(8, DeviceSamplingReference.sample(SMALL, 1f, 1, 1f, 1, 1));
    }

    @Test
    void shouldGiveTheLogSoftmaxAtTheToken() {
        float[] row = fp16Row(new SplittableRandom(13), 50_272);
        double max = row[Sampler.argmax(row)];
        double sum = 0;
        for (float l : row) {
            sum += Math.exp(l - max);
        }
        for (int token : new int[]{0, 17, Sampler.argmax(row)}) {
            assertEquals(row[token] - max - Math.log(sum), DeviceSamplingReference.logprob(row, token), 1e-4);
        }
    }

    @Test
    void shouldRejectBadRows() {
        SamplingRows rows = new SamplingRows(2);
        assertThrows(IllegalArgumentException.class, () -> rows.add(1f, -1, 1f, 0, 0), "negative topK");
        assertThrows(IllegalArgumentException.class, () -> rows.add(1f, 0, 0f, 0, 0), "topP 0");
        assertThrows(IllegalArgumentException.class, () -> rows.add(-1f, 0, 1f, 0, 0), "negative temperature");
        rows.add(SamplingParams.greedy(), 0);
        rows.add(new SamplingParams(1f, 5, 0.9f, 4), 3);
        IllegalArgumentException full = assertThrows(IllegalArgumentException.class, () -> rows.add(SamplingParams.greedy(), 0));
        assertTrue(full.getMessage().contains("capacity"), full.getMessage());
        assertThrows(IllegalArgumentException.class, () -> rows.topK(2), "row beyond count");
        assertEquals(5, rows.topK(1));
        assertEquals(3, rows.counter(1));
        rows.clear();
        assertEquals(0, rows.count());
        assertThrows(IllegalArgumentException.class, () -> new SamplingRows(0));
    }

    /** Sampler.next's probabilities, from its sort (descending, ties by lower index) and cuts, in double. */
    private static double[] samplerDistribution(float[] logits, float temperature, int topK, float topP) {
        Integer[] order = IntStream.range(0, logits.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.<Integer>comparingDouble(i -> -logits[i]).thenComparingInt(i -> i));
        int candidates = topK > 0 ? Math.min(topK, logits.length) : logits.length;
        double[] weights = new double[candidates];
        double total = 0;
        for (int i = 0; i < candidates; i++) {
            weights[i] = Math.exp((logits[order[i]] - logits[order[0]]) / temperature);
            total += weights[i];
        }
        if (topP < 1f) {
            double cumulative = 0;
            int keep = candidates;
            for (int i = 0; i < candidates; i++) {
                cumulative += weights[i] / total;
                if (cumulative >= topP) {
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
        double[] p = new double[logits.length];
        for (int i = 0; i < candidates; i++) {
            p[order[i]] = weights[i] / total;
        }
        return p;
    }

    /** Logit-like FP16 values: normal, σ 3, so ties among the 50k are common. */
    static float[] fp16Row(SplittableRandom random, int vocab) {
        float[] row = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            row[i] = Float.float16ToFloat(Float.floatToFloat16((float) (3 * random.nextGaussian())));
        }
        return row;
    }

    private static void assertArrayEquals(int[] expected, int[] actual) {
        org.junit.jupiter.api.Assertions.assertArrayEquals(expected, actual);
    }
}
