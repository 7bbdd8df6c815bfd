package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.checkpoint.HfCheckpoint;
import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.quant.Calibration;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RecipeApplier;
import io.bitrelay.runtime.quant.SmoothQuant;
import io.bitrelay.runtime.quant.store.StageFile;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A stage whose layers stream to the GPU one at a time — FP16 from the checkpoint, or W8A8 rebuilt from a saved
 * stage file on each FP32 layer — computes what the stage built from the host's whole copy computes. The uploads are
 * the same bytes, but each stage tunes its own FP16 GEMMs (the LM head; every linear of an FP16 stage) and may pick
 * another algorithm, so results agree to FP16 accumulation-order noise (relative L2 ≤ 1e-3; a wrong or misplaced
 * layer is off by O(1)). Skipped, with the reason, where no GPU is usable.
 */
@Timeout(300)
class GpuStageStreamTest {
    private static final OptConfig CONFIG = new OptConfig(300, 256, 3, 4, 1024, 256, 256, true, false, true, 2, 2, 1, "float32");
    private static final int MAX_BATCH_TOKENS = 64;
    private static final LayerRange LAST = new LayerRange(1, 3, 3);

    @TempDir
    Path temp;

    @Test
    void shouldServeFp16LayersStreamedFromTheCheckpointAsTheHostCopyDoes() {
        GpuTestSupport.requireGpu();
        Path checkpoint = SyntheticCheckpointWriter.write(temp.resolve("model"), CONFIG, SyntheticOptions.defaults());
        try (OptModel full = OptModel.load(checkpoint, LAST);
             OptModel host = OptModel.loadWithoutLayers(checkpoint, LAST);
             HfCheckpoint files = HfCheckpoint.open(checkpoint);
             GpuStage fromCopy = GpuStage.open(0, full, MAX_BATCH_TOKENS, CONFIG.maxPositions());
             GpuStage streamed = GpuStage.stream(0, host, StageRecipe.FP16, GpuStage.LayerSource.checkpoint(files, CONFIG, LAST),
                     MAX_BATCH_TOKENS, CONFIG.maxPositions())) {
            assertSameOutputs(fromCopy, streamed);
        }
    }

    @Test
    void shouldServeW8A8LayersRebuiltOneAtATimeFromAStageFile() {
        GpuTestSupport.requireGpu();
        Path checkpoint = SyntheticCheckpointWriter.write(temp.resolve("model"), CONFIG, SyntheticOptions.defaults().withOutliers(true));
        try (OptModel whole = OptModel.load(checkpoint)) {
            int[] tokens = new SplittableRandom(7).ints(512, 3, CONFIG.vocabSize()).toArray();
            CalibrationStats stats = Calibration.run(whole, tokens, 8, 64, "random", Progress.NONE);
            try (OptModel full = OptModel.load(checkpoint, LAST);
                 OptModel quantized = RecipeApplier.apply(full, QuantRecipe.W8A8_SMOOTHQUANT, stats, SmoothQuant.DEFAULT_ALPHA);
                 OptModel host = OptModel.loadWithoutLayers(checkpoint, LAST);
                 HfCheckpoint files = HfCheckpoint.open(checkpoint)) {
                StageFile.Identity identity = new StageFile.Identity("test", QuantRecipe.W8A8_SMOOTHQUANT.name(),
                        SmoothQuant.DEFAULT_ALPHA, LAST.first(), LAST.end());
                Path saved = temp.resolve("stage.safetensors");
                StageFile.Written written = StageFile.save(saved, full, quantized, identity);
                try (StageFile.Reader reader = StageFile.Reader.open(saved, identity, written.crc32c());
                     GpuStage fromCopy = GpuStage.open(0, quantized, MAX_BATCH_TOKENS, CONFIG.maxPositions());
                     GpuStage streamed = GpuStage.stream(0, host, StageRecipe.W8A8, (local, arena) -> reader.restoreLayer(local,
                             GpuStage.LayerSource.checkpoint(files, CONFIG, LAST).layer(local, arena), arena),
                             MAX_BATCH_TOKENS, CONFIG.maxPositions())) {
                    assertEquals(StageRecipe.W8A8, streamed.recipe());
                    assertSameOutputs(fromCopy, streamed);
                }
            }
        }
    }

    /** Relative L2 distance allowed between the two stages' rows and logits (see the class comment). */
    private static final double TOLERANCE = 1e-3;

    /** A prefill of 40 rows, then two one-token decodes, through both stages: the same rows and logits. */
    private static void assertSameOutputs(GpuStage fromCopy, GpuStage streamed) {
        assertEquals(fromCopy.weightBytes(), streamed.weightBytes());
        assertTrue(streamed.hasLmHead());
        GpuSequence a = fromCopy.newSequence();
        GpuSequence b = streamed.newSequence();
        int rows = 40;
        SplittableRandom random = new SplittableRandom(3);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment input = arena.allocate((long) rows * CONFIG.hiddenSize() * Float.BYTES, 64);
            for (long i = 0; i < (long) rows * CONFIG.hiddenSize(); i++) {
                input.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
            }
            for (int step = 0; step < 3; step++) {
                int stepRows = step == 0 ? rows : 1;
                MemorySegment x = arena.allocate((long) stepRows * CONFIG.hiddenSize() * Float.BYTES, 64);
                MemorySegment y = arena.allocate(x.byteSize(), 64);
                x.copyFrom(input.asSlice(0, x.byteSize()));
                y.copyFrom(x);
                fromCopy.runLayers(List.of(new GpuChunk(a, stepRows)), x);
                streamed.runLayers(List.of(new GpuChunk(b, stepRows)), y);
                assertClose(x.toArray(ValueLayout.JAVA_FLOAT), y.toArray(ValueLayout.JAVA_FLOAT), "step " + step + " rows");
                int[] sampled = {stepRows - 1};
                assertClose(fromCopy.logits(sampled)[0], streamed.logits(sampled)[0], "step " + step + " logits");
            }
        }
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < expected.length; i++) {
            diff += (double) (expected[i] - actual[i]) * (expected[i] - actual[i]);
            norm += (double) expected[i] * expected[i];
        }
        double relative = Math.sqrt(diff / norm);
        assertTrue(relative <= TOLERANCE, what + ": relative L2 " + relative);
    }
}
