package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.generate.SamplingRows;
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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A whole-model GPU stage running steps ahead: input embeddings on the device (host tokens, and tokens a sampling pass
 * left there) against the CPU model's, and a greedy decode queued a step ahead of its tokens against the same decode
 * awaiting each step's tokens first. Skipped, with the reason, where no GPU is usable.
 */
@Timeout(300)
class StepsAheadTest {
    /** vocab 300, width 256, 3 layers of 4 heads; tied embeddings, final LayerNorm. */
    private static final OptConfig CONFIG = new OptConfig(300, 256, 3, 4, 1024, 256, 256, true, false, true, 2, 2, 1, "float32");
    private static final int MAX_BATCH_TOKENS = 64;

    @TempDir
    Path temp;

    private OptModel model() {
        return OptModel.load(SyntheticCheckpointWriter.write(temp.resolve("model"), CONFIG,
                SyntheticOptions.defaults().withStorage(DType.F32).withOutliers(true)));
    }

    @Test
    void shouldEmbedHostAndSampledTokensAsTheCpuModelDoesUpToTheFp16TokenTable() {
        GpuTestSupport.requireGpu();
        try (OptModel model = model();
             GpuStage stage = GpuStage.open(0, model, MAX_BATCH_TOKENS, CONFIG.maxPositions());
             Arena arena = Arena.ofShared()) {
            assertTrue(stage.embedsOnDevice(), "a stage owning embeddings and head embeds on the device");
            int[] tokens = {0, 1, 7, 299, 150, 42};
            int[] positions = {0, 5, 6, 7, 200, 255};
            int[] none = {-1, -1, -1, -1, -1, -1};
            stage.embed(tokens.length, tokens, none, positions, null);
            assertEmbedded(model, stage, tokens, positions, arena, "host tokens");

            // a greedy pass over those rows leaves its tokens on the device; rows fed from it in another order
            SamplingRows greedy = new SamplingRows(4);
            for (int i = 0; i < 4; i++) {
                greedy.add(SamplingParams.greedy(), 0);
            }
            GpuStage.SampledTokens pass = stage.sampleAhead(new int[]{0, 1, 2, 3}, greedy);
            int[] sampled = new int[4];
            stage.awaitSampled(pass, sampled);
            int[] fed = {3, -1, 0, 2};
            int[] hostTokens = {-1, 11, -1, -1};
            int[] fedPositions = {9, 10, 11, 12};
            stage.embed(4, hostTokens, fed, fedPositions, pass);
            int[] expected = {sampled[3], 11, sampled[0], sampled[2]};
            assertEmbedded(model, stage, expected, fedPositions, arena, "fed rows");

            assertThrows(IllegalArgumentException.class, () -> stage.embed(1, new int[]{300}, new int[]{-1}, new int[]{0}, null),
                    "a token outside the vocabulary");
            assertThrows(IllegalArgumentException.class, () -> stage.embed(1, new int[]{1}, new int[]{4}, new int[]{0}, pass),
                    "a fed index beyond the pass");
            assertThrows(IllegalArgumentException.class, () -> stage.embed(1, new int[]{1}, new int[]{-1}, new int[]{256}, null),
                    "a position beyond the context");
        }
    }

    @Test
    void shouldDecodeTheSameTokensAStepAheadOfThemAsOneStepAtATime() {
        GpuTestSupport.requireGpu();
        int sequences = 5;
        int steps = 40;
        try (OptModel model = model();
             GpuStage stage = GpuStage.open(0, model, MAX_BATCH_TOKENS, CONFIG.maxPositions())) {
            int[][] oneAtATime = decode(stage, sequences, steps, false);
            int[][] ahead = decode(stage, sequences, steps, true);
            for (int s = 0; s < sequences; s++) {
                assertArrayEquals(oneAtATime[s], ahead[s], "sequence " + s);
            }
        }
    }

    /**
     * Greedy decode of {@code sequences} one-token prompts for {@code steps} steps; {@code ahead}: step t + 1 is queued
     * from step t's pass before step t's tokens are awaited.
     */
    private static int[][] decode(GpuStage stage, int sequences, int steps, boolean ahead) {
        List<GpuSequence> caches = new ArrayList<>();
        for (int s = 0; s < sequences; s++) {
            caches.add(stage.newSequence(steps + 1));
        }
        int[][] out = new int[sequences][steps];
        int[] rows = new int[sequences];
        int[] tokens = new int[sequences];
        int[] fed = new int[sequences];
        int[] positions = new int[sequences];
        SamplingRows greedy = new SamplingRows(sequences);
        for (int s = 0; s < sequences; s++) {
            rows[s] = s;
            greedy.add(SamplingParams.greedy(), 0);
            tokens[s] = 3 + 17 * s;
            fed[s] = -1;
        }
        List<GpuChunk> chunks = caches.stream().map(c -> new GpuChunk(c, 1)).toList();
        GpuStage.SampledTokens previous = null;
        int[] got = new int[sequences];
        for (int t = 0; t < steps; t++) {
            Arrays.fill(positions, t);
            if (t > 0) {
                for (int s = 0; s < sequences; s++) {
                    fed[s] = s;
                }
            }
            stage.embed(sequences, tokens, fed, positions, previous);
            stage.enqueueLayers(chunks);
            GpuStage.SampledTokens pass = stage.sampleAhead(rows, greedy);
            if (ahead) {
                if (previous != null) {
                    stage.awaitSampled(previous, got);
                    for (int s = 0; s < sequences; s++) {
                        out[s][t - 1] = got[s];
                    }
                }
            } else {
                stage.awaitSampled(pass, got);
                for (int s = 0; s < sequences; s++) {
                    out[s][t] = got[s];
                }
            }
            previous = pass;
        }
        if (ahead) {
            stage.awaitSampled(previous, got);
            for (int s = 0; s < sequences; s++) {
                out[s][steps - 1] = got[s];
            }
        }
        caches.forEach(stage::release);
        return out;
    }

    private static void assertEmbedded(OptModel model, GpuStage stage, int[] tokens, int[] positions, Arena arena, String what) {
        int rows = tokens.length;
        int width = CONFIG.hiddenSize();
        MemorySegment device = arena.allocate((long) rows * width * Float.BYTES, 64);
        stage.storeHidden(device, rows);
        List<int[]> chunks = new ArrayList<>();
        int[] starts = new int[rows];
        for (int r = 0; r < rows; r++) {
            chunks.add(new int[]{tokens[r]});
            starts[r] = positions[r];
        }
        MemorySegment host = model.embed(chunks, starts, arena);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < width; c++) {
                long at = ((long) r * width + c) * Float.BYTES;
                float expected = host.get(ValueLayout.JAVA_FLOAT, at);
                float actual = device.get(ValueLayout.JAVA_FLOAT, at);
                float token = model.weights().tokenEmbeddings().get(ValueLayout.JAVA_FLOAT, ((long) tokens[r] * width + c) * Float.BYTES);
                // the token row went through FP16: half an FP16 ulp of it (2^-25 at least: subnormals below 2^-14
                // keep an absolute step of 2^-24), and a float's rounding of each sum
                double tolerance = Math.max(Math.abs(token) * 0x1p-11, 0x1p-25) + Math.abs(expected) * 0x1p-22;
                assertTrue(Math.abs(expected - actual) <= tolerance, what + ": row " + r + " column " + c + ": host " + expected
                        + ", device " + actual);
            }
        }
    }
}
