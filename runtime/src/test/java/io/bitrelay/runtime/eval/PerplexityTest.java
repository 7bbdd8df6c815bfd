package io.bitrelay.runtime.eval;

import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

@Timeout(60)
class PerplexityTest {
    /**
     * Relative agreement asked of two computations of one perplexity. Not 0: the same forward pass can round
     * differently before and after the JIT compiles the vector kernels (lane-reduction order), ~1e-7 here.
     */
    private static final double RELATIVE = 1e-6;

    @TempDir
    static Path temp;
    static Path checkpoint;

    @BeforeAll
    static void writeModel() {
        checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
    }

    /** exp(mean over windows and positions t < len−1 of −log softmax(logits_t)[x_{t+1}]), from whole-window logits. */
    static double directPerplexity(OptModel model, int[] tokens, int windowLength, int windows) {
        double nll = 0;
        long count = 0;
        for (int w = 0; w < windows; w++) {
            int[] window = java.util.Arrays.copyOfRange(tokens, w * windowLength, (w + 1) * windowLength);
            float[][] logits;
            try (KvCache cache = model.newCache()) {
                logits = model.forward(List.of(new SequenceChunk(window, cache)), true);
            }
            for (int t = 0; t < windowLength - 1; t++) {
                double sumExp = 0;
                for (float v : logits[t]) {
                    sumExp += Math.exp(v);
                }
                nll += Math.log(sumExp) - logits[t][window[t + 1]];
                count++;
            }
        }
        return Math.exp(nll / count);
    }

    @Test
    void shouldMatchTheDirectFormulaOverNonOverlappingWindows() {
        int[] tokens = new SplittableRandom(1).ints(3 * 40 + 17, 3, 300).toArray();
        try (OptModel model = OptModel.load(checkpoint)) {
            Perplexity.Result all = Perplexity.evaluate(model, tokens, 40, 0, Progress.NONE);
            assertEquals(3, all.windows(), "the partial last window is dropped");
            assertEquals(3 * 39, all.predictedTokens());
            assertEquals(directPerplexity(model, tokens, 40, 3), all.perplexity(), RELATIVE * all.perplexity());
            assertEquals(Math.log(all.perplexity()), all.meanNll(), 1e-12);

            Perplexity.Result two = Perplexity.evaluate(model, tokens, 40, 2, Progress.NONE);
            assertEquals(2, two.windows());
            assertEquals(directPerplexity(model, tokens, 40, 2), two.perplexity(), RELATIVE * two.perplexity());
        }
    }

    @Test
    void shouldScoreMoreRowsThanOneLogitBlock() {
        int[] tokens = new SplittableRandom(2).ints(150, 3, 300).toArray(); // window of 150 → 149 rows, three blocks
        try (OptModel model = OptModel.load(checkpoint)) {
            Perplexity.Result result = Perplexity.evaluate(model, tokens, 150, 0, Progress.NONE);
            assertEquals(directPerplexity(model, tokens, 150, 1), result.perplexity(), RELATIVE * result.perplexity());
        }
    }

    @Test
    void shouldRejectTextShorterThanOneWindowAndWindowsBeyondTheContext() {
        try (OptModel model = OptModel.load(checkpoint)) {
            assertThrows(IllegalArgumentException.class, () -> Perplexity.evaluate(model, new int[30], 40, 0, Progress.NONE));
            assertThrows(IllegalArgumentException.class, () -> Perplexity.evaluate(model, new int[400], 161, 0, Progress.NONE));
        }
    }

    @Test
    void shouldComputeNegativeLogLikelihoodStablyForLargeLogits() {
        float[] logits = {1000f, 1000f, 990f};
        double expected = Math.log(2 + Math.exp(-10));
        assertEquals(expected, Perplexity.negativeLogLikelihood(logits, 0), 1e-12);
    }
}
