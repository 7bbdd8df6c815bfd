package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptModel;
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

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A stage whose layers stream from the checkpoint to the GPU one at a time computes exactly what the stage built
 * from the host's FP32 copy computes: the same FP16 uploads, so the same bits, rows and logits alike. Skipped,
 * with the reason, where no GPU is usable.
 */
@Timeout(300)
class GpuStageStreamTest {
    private static final OptConfig CONFIG = new OptConfig(300, 256, 3, 4, 1024, 256, 256, true, false, true, 2, 2, 1, "float32");
    private static final int MAX_BATCH_TOKENS = 64;

    @TempDir
    Path temp;

    @Test
    void shouldServeTheLayersItStreamedAsTheHostCopyDoes() {
        GpuTestSupport.requireGpu();
        Path checkpoint = SyntheticCheckpointWriter.write(temp.resolve("model"), CONFIG, SyntheticOptions.defaults());
        LayerRange last = new LayerRange(1, 3, 3);
        try (OptModel full = OptModel.load(checkpoint, last);
             OptModel host = OptModel.loadWithoutLayers(checkpoint, last);
             GpuStage fromCopy = GpuStage.open(0, full, MAX_BATCH_TOKENS, CONFIG.maxPositions());
             GpuStage streamed = GpuStage.stream(0, checkpoint, host, MAX_BATCH_TOKENS, CONFIG.maxPositions());
             Arena arena = Arena.ofShared()) {
            assertEquals(fromCopy.weightBytes(), streamed.weightBytes());
            assertTrue(streamed.hasLmHead());
            GpuSequence a = fromCopy.newSequence();
            GpuSequence b = streamed.newSequence();
            int rows = 40;
            SplittableRandom random = new SplittableRandom(3);
            MemorySegment input = arena.allocate((long) rows * CONFIG.hiddenSize() * Float.BYTES, 64);
            for (long i = 0; i < (long) rows * CONFIG.hiddenSize(); i++) {
                input.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
            }
            for (int step = 0; step < 3; step++) { // a prefill of 40 rows, then two one-token decodes
                int stepRows = step == 0 ? rows : 1;
                MemorySegment x = arena.allocate((long) stepRows * CONFIG.hiddenSize() * Float.BYTES, 64);
                MemorySegment y = arena.allocate(x.byteSize(), 64);
                x.copyFrom(input.asSlice(0, x.byteSize()));
                y.copyFrom(x);
                fromCopy.runLayers(List.of(new GpuChunk(a, stepRows)), x);
                streamed.runLayers(List.of(new GpuChunk(b, stepRows)), y);
                assertEquals(-1, x.mismatch(y), "step " + step + ": the streamed stage's rows differ");
                int[] sampled = {stepRows - 1};
                assertArrayEquals(fromCopy.logits(sampled)[0], streamed.logits(sampled)[0], 0f, "step " + step + " logits");
            }
        }
    }
}
