package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.cuda.kernels.AttentionKernels;
import io.bitrelay.runtime.model.opt.OptConfig;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Replayed decode graphs compute exactly what kernel-by-kernel launches compute: two stages with the same seeded
 * weights, one with graphs and one without, run the same decode steps (two batch sizes, contexts growing across
 * the attention split's boundaries, so several graphs are captured and replayed) and must leave bit-identical
 * hidden states and cache lengths. A batch whose contexts grow through OPT's whole context captures one graph per
 * launch configuration, of which the bucketed decode split makes few, and replays every other step.
 */
@Timeout(300)
class DecodeGraphsTest {
    /** 4 heads of 64, 3 layers: small, but every kernel of a real layer runs. */
    private static final OptConfig CONFIG = new OptConfig(300, 256, 3, 4, 1024, 512, 256, true, false, true, 2, 2, 1, "float32");
    private static final int CONTEXT = 120;
    private static final int STEPS = 12;
    /** As CONFIG, with OPT's context of 2048 positions. */
    private static final OptConfig LONG_CONFIG = new OptConfig(300, 256, 3, 4, 1024, 2048, 256, true, false, true, 2, 2, 1,
            "float32");
    /** Contexts the growing batch starts from: unequal, so the longest one sets the split. */
    private static final int[] START_CONTEXTS = {0, 5, 17, 40};

    @ParameterizedTest
    @EnumSource(StageRecipe.class)
    void shouldReplayDecodeStepsBitForBitLikeEagerLaunches(StageRecipe recipe) {
        GpuTestSupport.requireGpu();
        try (GpuStage graphs = GpuStage.random(0, CONFIG, recipe, CONFIG.numLayers(), 64, 256, 3);
             GpuStage eager = GpuStage.random(0, CONFIG, recipe, CONFIG.numLayers(), 64, 256, 3);
             Arena arena = Arena.ofConfined()) {
            graphs.useDecodeGraphs(true);
            eager.useDecodeGraphs(false);
            List<GpuSequence> withGraphs = sequences(graphs, 5);
            List<GpuSequence> without = sequences(eager, 5);
            SplittableRandom random = new SplittableRandom(9);
            for (int step = 0; step < STEPS; step++) {
                int batch = step % 4 == 3 ? 3 : 5; // a second launch configuration between the first's steps
                MemorySegment a = arena.allocate((long) batch * CONFIG.hiddenSize() * Float.BYTES, 64);
                for (long i = 0; i < a.byteSize() / Float.BYTES; i++) {
                    a.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
                }
                MemorySegment b = arena.allocate(a.byteSize(), 64);
                b.copyFrom(a);
                graphs.runLayers(chunks(withGraphs, batch), a);
                eager.runLayers(chunks(without, batch), b);
                assertArrayEquals(b.toArray(ValueLayout.JAVA_FLOAT), a.toArray(ValueLayout.JAVA_FLOAT),
                        recipe + " step " + step + " (batch " + batch + ")");
            }
            for (int s = 0; s < withGraphs.size(); s++) {
                assertEquals(without.get(s).length(), withGraphs.get(s).length(), "cache length of sequence " + s);
            }
            System.out.printf("[%s] decode graphs: %s%n", recipe, graphs.decodeGraphsStatus());
            assertTrue(graphs.decodeGraphReplays() > 0, "no decode step was replayed: " + graphs.decodeGraphsStatus());
            assertEquals(0, eager.decodeGraphReplays());
        }
    }

    @ParameterizedTest
    @EnumSource(StageRecipe.class)
    void shouldCaptureFewGraphsAndReplayTheRestWhileContextsGrow(StageRecipe recipe) {
        GpuTestSupport.requireGpu();
        int contextLimit = LONG_CONFIG.maxPositions();
        int batch = START_CONTEXTS.length;
        try (GpuStage graphs = GpuStage.random(0, LONG_CONFIG, recipe, LONG_CONFIG.numLayers(), batch, contextLimit, 5);
             GpuStage eager = GpuStage.random(0, LONG_CONFIG, recipe, LONG_CONFIG.numLayers(), batch, contextLimit, 5);
             Arena arena = Arena.ofConfined()) {
            graphs.useDecodeGraphs(true);
            eager.useDecodeGraphs(false);
            List<GpuSequence> withGraphs = growingSequences(graphs);
            List<GpuSequence> without = growingSequences(eager);
            int multiprocessors = graphs.context().device().multiprocessors();
            int longestStart = START_CONTEXTS[START_CONTEXTS.length - 1];
            int steps = contextLimit - longestStart;
            Set<AttentionKernels.DecodeSplit> splits = new HashSet<>();
            Set<Boolean> combines = new HashSet<>();
            SplittableRandom random = new SplittableRandom(11);
            MemorySegment a = arena.allocate((long) batch * LONG_CONFIG.hiddenSize() * Float.BYTES, 64);
            MemorySegment b = arena.allocate(a.byteSize(), 64);
            for (int step = 0; step < steps; step++) {
                AttentionKernels.DecodeSplit split = AttentionKernels.decodeSplit(batch, LONG_CONFIG.numHeads(),
                        longestStart + step + 1, multiprocessors);
                splits.add(split);
                combines.add(split.maxSplits() > 1);
                for (long i = 0; i < a.byteSize() / Float.BYTES; i++) {
                    a.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
                }
                b.copyFrom(a);
                graphs.runLayers(chunks(withGraphs, batch), a);
                eager.runLayers(chunks(without, batch), b);
                assertArrayEquals(b.toArray(ValueLayout.JAVA_FLOAT), a.toArray(ValueLayout.JAVA_FLOAT),
                        recipe + " step " + step + " (" + split + ")");
            }
            System.out.printf("[%s] decode graphs over contexts %d..%d: %s, %d launch configurations%n", recipe,
                    longestStart + 1, contextLimit, graphs.decodeGraphsStatus(), splits.size());
            // a few captures: the bucketed split makes at most two launch configurations per doubling past 128
            assertTrue(splits.size() <= 9, splits.size() + " launch configurations: " + splits);
            assertEquals(splits.size(), graphs.decodeGraphCaptures(), "one capture per launch configuration");
            // only a launch set's first step runs eagerly; a new split of known rows is captured at first sight
            assertEquals(steps - combines.size(), graphs.decodeGraphReplays(), graphs.decodeGraphsStatus());
        }
    }

    private static List<GpuSequence> growingSequences(GpuStage stage) {
        List<GpuSequence> sequences = new ArrayList<>();
        for (int s = 0; s < START_CONTEXTS.length; s++) {
            GpuSequence sequence = stage.newSequence();
            stage.fillRandomContext(sequence, START_CONTEXTS[s], 70 + s);
            sequences.add(sequence);
        }
        return sequences;
    }

    private static List<GpuSequence> sequences(GpuStage stage, int count) {
        List<GpuSequence> sequences = new ArrayList<>();
        for (int s = 0; s < count; s++) {
            GpuSequence sequence = stage.newSequence();
            stage.fillRandomContext(sequence, CONTEXT + 3 * s, 40 + s);
            sequences.add(sequence);
        }
        return sequences;
    }

    private static List<GpuChunk> chunks(List<GpuSequence> sequences, int batch) {
        List<GpuChunk> chunks = new ArrayList<>();
        for (int s = 0; s < batch; s++) {
            chunks.add(new GpuChunk(sequences.get(s), 1));
        }
        return chunks;
    }
}
