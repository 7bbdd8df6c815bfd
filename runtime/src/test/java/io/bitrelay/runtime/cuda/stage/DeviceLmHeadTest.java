package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.generate.DeviceSamplingReference;
import io.bitrelay.runtime.generate.Sampler;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.generate.SamplingRows;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import io.bitrelay.runtime.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPU stage's final LayerNorm + LM head (FP16 embeddings and logits) against the CPU model's FP32 logits
 * for the same residual rows: scattered and consecutive rows, more rows than one GEMM pass takes, and the
 * stages that have no head. Skipped, with the reason, where no GPU is usable.
 */
@Timeout(300)
class DeviceLmHeadTest {
    /** vocab 300, width 256, 3 layers of 4 heads; tied embeddings, final LayerNorm. */
    private static final OptConfig CONFIG = new OptConfig(300, 256, 3, 4, 1024, 256, 256, true, false, true, 2, 2, 1, "float32");
    private static final int MAX_BATCH_TOKENS = 300;
    /** FP16 normalised rows, FP16 embeddings and FP16 logits: a few 2^-11 roundings of logits of size ~max |logit|. */
    private static final double RELATIVE_MAX_ABS = 1e-2;
    /** Greedy tokens must agree where the CPU's best logit leads the second by more than this. */
    private static final float CLEAR_MARGIN = 0.05f;

    @TempDir
    Path temp;

    @Test
    void shouldComputeTheCpuLogitsOfAnyRows() {
        GpuTestSupport.requireGpu();
        Path checkpoint = SyntheticCheckpointWriter.write(temp.resolve("model"), CONFIG,
                SyntheticOptions.defaults().withStorage(DType.F32).withOutliers(true));
        try (OptModel model = OptModel.load(checkpoint);
             GpuStage stage = GpuStage.open(0, model, MAX_BATCH_TOKENS, CONFIG.maxPositions());
             Arena arena = Arena.ofShared()) {
            assertTrue(stage.hasLmHead(), "a stage owning the head runs it");
            int rows = 290;
            MemorySegment hidden = residualRows(arena, rows, CONFIG.hiddenSize());
            stage.loadHidden(hidden, rows);
            compare(model, stage, hidden, new int[]{0, 1, 2, 7, 20, 21, 289, 5}, arena, "scattered rows");
            compare(model, stage, hidden, IntStream.range(0, rows).toArray(), arena, "290 rows: two GEMM passes");
            assertThrows(IllegalArgumentException.class, () -> stage.logits(new int[]{MAX_BATCH_TOKENS}));
        }
    }

    @Test
    void shouldSampleOnTheDeviceAsTheReferenceDoesOnItsLogits() {
        GpuTestSupport.requireGpu();
        Path checkpoint = SyntheticCheckpointWriter.write(temp.resolve("model"), CONFIG,
                SyntheticOptions.defaults().withStorage(DType.F32).withOutliers(true));
        try (OptModel model = OptModel.load(checkpoint);
             GpuStage stage = GpuStage.open(0, model, MAX_BATCH_TOKENS, CONFIG.maxPositions());
             Arena arena = Arena.ofShared()) {
            int count = 290;
            stage.loadHidden(residualRows(arena, count, CONFIG.hiddenSize()), count);
            int[] rows = IntStream.range(0, count).map(i -> (i * 7) % count).toArray();  // scattered, two passes
            float[][] logits = stage.logits(rows);
            SamplingRows params = new SamplingRows(count);
            int[] tokens = new int[count];
            float[] logprobs = new float[count];
            for (int i = 0; i < count; i++) {
                params.add(SamplingParams.greedy(), i);
            }
            stage.sample(rows, params, tokens, logprobs);
            for (int i = 0; i < count; i++) {
                assertEquals(Sampler.argmax(logits[i]), tokens[i], "greedy token of row " + rows[i]);
                assertEquals(DeviceSamplingReference.logprob(logits[i], tokens[i]), logprobs[i], 1e-3, "logprob of row " + rows[i]);
            }
            params.clear();
            for (int i = 0; i < count; i++) {
                params.add(new SamplingParams(0.9f, i % 3 == 0 ? 0 : 20, i % 2 == 0 ? 1f : 0.9f, 77 + i), i);
            }
            stage.sample(rows, params, tokens);
            int differing = 0;
            for (int i = 0; i < count; i++) {
                differing += tokens[i] == DeviceSamplingReference.sample(logits[i], params, i) ? 0 : 1;
            }
            assertTrue(differing <= 2, differing + " of " + count + " sampled tokens differ from the CPU port");
            assertThrows(IllegalArgumentException.class, () -> stage.sample(new int[]{MAX_BATCH_TOKENS}, oneGreedy(), new int[1]));
            assertThrows(IllegalArgumentException.class, () -> stage.sample(new int[0], oneGreedy(), new int[1]));
            assertThrows(IllegalArgumentException.class, () -> stage.sample(new int[]{0}, oneGreedy(), new int[0]));
        }
    }

    private static SamplingRows oneGreedy() {
        SamplingRows rows = new SamplingRows(1);
        rows.add(SamplingParams.greedy(), 0);
        return rows;
    }

    @Test
    void shouldLeaveTheHeadToTheLastStage() {
        GpuTestSupport.requireGpu();
        Path checkpoint = SyntheticCheckpointWriter.write(temp.resolve("model"), CONFIG, SyntheticOptions.defaults());
        try (OptModel first = OptModel.load(checkpoint, new LayerRange(0, 1, CONFIG.numLayers()));
             GpuStage stage = GpuStage.open(0, first, 16, CONFIG.maxPositions())) {
            assertFalse(stage.hasLmHead());
            assertThrows(IllegalStateException.class, () -> stage.logits(new int[]{0}));
            assertThrows(IllegalStateException.class, () -> stage.sample(new int[]{0}, oneGreedy(), new int[1]));
        }
    }

    private static void compare(OptModel model, GpuStage stage, MemorySegment hidden, int[] rows, Arena arena, String what) {
        float[][] expected = model.logits(hidden, rows, arena);
        float[][] actual = stage.logits(rows);
        assertEquals(rows.length, actual.length, what);
        int clear = 0;
        for (int i = 0; i < rows.length; i++) {
            float scale = 1f;
            for (float v : expected[i]) {
                scale = Math.max(scale, Math.abs(v));
            }
            double largest = 0;
            for (int v = 0; v < CONFIG.vocabSize(); v++) {
                largest = Math.max(largest, Math.abs(actual[i][v] - expected[i][v]));
            }
            double worst = largest;
            int row = rows[i];
            double bound = RELATIVE_MAX_ABS * scale;
            assertTrue(worst <= bound, () -> what + ", row " + row + ": max |Δ| " + worst + " > " + bound);
            int best = Sampler.argmax(expected[i]);
            float second = Float.NEGATIVE_INFINITY;
            for (int v = 0; v < expected[i].length; v++) {
                if (v != best) {
                    second = Math.max(second, expected[i][v]);
                }
            }
            if (expected[i][best] - second > CLEAR_MARGIN) {
                clear++;
                assertEquals(best, Sampler.argmax(actual[i]), what + ", row " + row + ": greedy token");
            }
        }
        assertTrue(clear > rows.length / 2, what + ": only " + clear + " of " + rows.length + " rows had a clear best token");
    }


    /** Residual-stream-like rows: unit noise, a mean offset, and two channels 30× larger (outliers). */
    private static MemorySegment residualRows(Arena arena, int rows, int width) {
        SplittableRandom random = new SplittableRandom(17);
        MemorySegment hidden = arena.allocate((long) rows * width * Float.BYTES, 64);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < width; c++) {
                double v = random.nextGaussian() + 0.3 + (c == 11 || c == 200 ? 30 * random.nextGaussian() : 0);
                hidden.setAtIndex(ValueLayout.JAVA_FLOAT, (long) r * width + c, (float) v);
            }
        }
        return hidden;
    }
}
