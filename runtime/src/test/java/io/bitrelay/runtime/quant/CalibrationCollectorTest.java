package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.ActivationObserver;
import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.LayerNormWeights;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.ops.cpu.ReferenceMatMul;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class CalibrationCollectorTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    @TempDir
    static Path temp;
    static Path checkpoint;

    @BeforeAll
    static void writeModel() {
        checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
    }

    /** Copies of every activation the model shows, per (layer, site), rows appended call after call. */
    private static final class Recorder implements ActivationObserver {
        final Map<CalibrationStats.Key, List<float[]>> rows = new HashMap<>();
        final Map<CalibrationStats.Key, Integer> widths = new HashMap<>();

        @Override
        public void observe(int layer, ActivationSite site, MemorySegment x, int rowCount, int width) {
            CalibrationStats.Key key = new CalibrationStats.Key(layer, site);
            widths.put(key, width);
            List<float[]> list = rows.computeIfAbsent(key, k -> new ArrayList<>());
            for (int i = 0; i < rowCount; i++) {
                float[] row = new float[width];
                MemorySegment.copy(x, F32, (long) i * width * Float.BYTES, row, 0, width);
                list.add(row);
            }
        }
    }

    private static ChannelStats direct(List<float[]> rows) {
        int width = rows.getFirst().length;
        float[] min = new float[width];
        float[] max = new float[width];
        float[] abs = new float[width];
        for (int j = 0; j < width; j++) {
            min[j] = Float.POSITIVE_INFINITY;
            max[j] = Float.NEGATIVE_INFINITY;
            for (float[] row : rows) {
                min[j] = Math.min(min[j], row[j]);
                max[j] = Math.max(max[j], row[j]);
                abs[j] = Math.max(abs[j], Math.abs(row[j]));
            }
        }
        return new ChannelStats(min, max, abs, rows.size());
    }

    private static void runWith(OptModel model, List<int[]> sequences, ActivationObserver observer) {
        for (int[] tokens : sequences) {
            try (Arena step = Arena.ofShared(); KvCache cache = model.newCache()) {
                List<SequenceChunk> chunks = List.of(new SequenceChunk(tokens, cache));
                model.runLayers(chunks, model.embed(chunks, step), step, observer);
            }
        }
    }

    @Test
    void shouldAccumulateMinMaxAbsMaxOfEveryActivationTheModelShows() {
        List<int[]> sequences = List.of(QuantTestModels.randomTokens(23, 1), QuantTestModels.randomTokens(9, 2));
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationCollector collector = new CalibrationCollector(RangeEstimator.MIN_MAX);
            Recorder recorder = new Recorder();
            runWith(model, sequences, (layer, site, x, rows, width) -> {
                collector.observe(layer, site, x, rows, width);
                recorder.observe(layer, site, x, rows, width);
            });
            CalibrationStats stats = collector.stats(new CalibrationStats.Source("tiny", "random", 2, 0));

            int layers = model.config().numLayers();
            assertEquals(layers * 6 + 1, stats.entries().size(), "six sites per layer plus the stage output");
            for (var entry : recorder.rows.entrySet()) {
                ChannelStats expected = direct(entry.getValue());
                ChannelStats actual = stats.get(entry.getKey().layer(), entry.getKey().site());
                assertEquals(32, actual.rows(), entry.getKey().toString());
                assertArrayEquals(expected.min(), actual.min(), 0f, entry.getKey().toString());
                assertArrayEquals(expected.max(), actual.max(), 0f, entry.getKey().toString());
                assertArrayEquals(expected.absMax(), actual.absMax(), 0f, entry.getKey().toString());
            }
            assertEquals(model.config().ffnDim(), stats.get(0, ActivationSite.FC2_INPUT).width());
            for (int layer = 0; layer < layers; layer++) {
                for (float min : stats.get(layer, ActivationSite.FC2_INPUT).min()) {
                    assertTrue(min >= 0f, "fc2 sees the output of a ReLU");
                }
            }
            assertTrue(stats.contains(layers - 1, ActivationSite.STAGE_OUTPUT));
        }
    }

    /** Batch-mean ranges are the mean over observe calls of each call's per-channel extremes; absMax stays the extreme. */
    @Test
    void shouldAverageEachBatchsExtremes() {
        CalibrationCollector collector = new CalibrationCollector(RangeEstimator.BATCH_MEAN);
        try (Arena arena = Arena.ofConfined()) {
            // two channels; batch 1 rows (1, −4), (3, 2); batch 2 rows (−1, 0), (5, 8), (2, 1)
            collector.observe(0, ActivationSite.FC1_INPUT, floats(arena, 1, -4, 3, 2), 2, 2);
            collector.observe(0, ActivationSite.FC1_INPUT, floats(arena, -1, 0, 5, 8, 2, 1), 3, 2);
        }
        CalibrationStats stats = collector.stats(new CalibrationStats.Source("", "", 2, 0));
        ChannelStats fc1 = stats.get(0, ActivationSite.FC1_INPUT);
        assertArrayEquals(new float[] {0f, -2f}, fc1.min(), 0f);  // (1 + −1)/2, (−4 + 0)/2
        assertArrayEquals(new float[] {4f, 5f}, fc1.max(), 0f);   // (3 + 5)/2, (2 + 8)/2
        assertArrayEquals(new float[] {5f, 8f}, fc1.absMax(), 0f);
        assertEquals(5, fc1.rows());
        assertEquals(RangeEstimator.BATCH_MEAN, stats.source().ranges());
    }

    /**
     * A cluster's stage runs several calibration sequences in one step; each must still be one batch, as
     * {@link Calibration} feeds them, or the batch-mean ranges depend on how the scheduler grouped them (and widen
     * towards the extremes with more sequences per step).
     */
    @Test
    void shouldCountEachSequenceOfAStepAsOneBatch() {
        List<int[]> sequences = List.of(QuantTestModels.randomTokens(19, 21), QuantTestModels.randomTokens(7, 22),
                QuantTestModels.randomTokens(13, 23));
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationCollector alone = new CalibrationCollector(RangeEstimator.BATCH_MEAN);
            runWith(model, sequences, alone);
            CalibrationCollector together = new CalibrationCollector(RangeEstimator.BATCH_MEAN);
            Recorder recorder = new Recorder();
            List<KvCache> caches = new ArrayList<>();
            try (Arena step = Arena.ofShared()) {
                List<SequenceChunk> chunks = new ArrayList<>();
                for (int[] tokens : sequences) {
                    caches.add(model.newCache());
                    chunks.add(new SequenceChunk(tokens, caches.getLast()));
                }
                model.runLayers(chunks, model.embed(chunks, step), step, together.andThen(recorder));
            } finally {
                caches.forEach(KvCache::close);
            }
            CalibrationStats.Source source = new CalibrationStats.Source("tiny", "random", 3, 0);
            for (var entry : alone.stats(source).entries().entrySet()) {
                assertClose(entry.getValue(), together.stats(source).entries().get(entry.getKey()), 1e-4f);
            }
            ChannelStats perSequence = together.stats(source).get(0, ActivationSite.QKV_INPUT);
            ChannelStats wholeStep = direct(recorder.rows.get(new CalibrationStats.Key(0, ActivationSite.QKV_INPUT)));
            assertEquals(39, perSequence.rows());
            assertTrue(!java.util.Arrays.equals(perSequence.max(), wholeStep.max()),
                    "the step's extremes equal the mean of its sequences' (the test would prove nothing)");
        }
    }

    /**
     * What made RPTQ worse with more calibration data: over more batches of one distribution, extremes keep
     * widening while the batch mean stays put.
     */
    @Test
    void shouldKeepBatchMeanRangesWhereTheyAreAsMoreBatchesOfTheSameDistributionCome() {
        int width = 64, rows = 256;
        float[] few = rangeWidths(RangeEstimator.BATCH_MEAN, 8, width, rows);
        float[] many = rangeWidths(RangeEstimator.BATCH_MEAN, 128, width, rows);
        float[] fewExtremes = rangeWidths(RangeEstimator.MIN_MAX, 8, width, rows);
        float[] manyExtremes = rangeWidths(RangeEstimator.MIN_MAX, 128, width, rows);
        double meanGrowth = 0;
        double extremeGrowth = 0;
        for (int j = 0; j < width; j++) {
            meanGrowth += many[j] / few[j] / width;
            extremeGrowth += manyExtremes[j] / fewExtremes[j] / width;
        }
        assertTrue(Math.abs(meanGrowth - 1) < 0.03, "batch-mean range grew by " + meanGrowth);
        assertTrue(extremeGrowth > 1.1, "min-max ranges grew by only " + extremeGrowth + " (the test would prove nothing)");
    }

    /** max − min per channel after {@code batches} batches of heavy-tailed (Student-t, 5 degrees of freedom) rows, same seed. */
    private static float[] rangeWidths(RangeEstimator ranges, int batches, int width, int rows) {
        CalibrationCollector collector = new CalibrationCollector(ranges);
        SplittableRandom random = new SplittableRandom(42);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = arena.allocate((long) rows * width * Float.BYTES);
            for (int b = 0; b < batches; b++) {
                for (long i = 0; i < (long) rows * width; i++) {
                    double chi = 0;
                    for (int d = 0; d < 5; d++) {
                        double g = random.nextGaussian();
                        chi += g * g;
                    }
                    x.setAtIndex(F32, i, (float) (random.nextGaussian() / Math.sqrt(chi / 5)));
                }
                collector.observe(0, ActivationSite.QKV_INPUT, x, rows, width);
            }
        }
        ChannelStats stats = collector.stats(new CalibrationStats.Source("", "", batches, rows)).get(0, ActivationSite.QKV_INPUT);
        float[] widths = new float[width];
        for (int j = 0; j < width; j++) {
            widths[j] = stats.max()[j] - stats.min()[j];
        }
        return widths;
    }

    private static MemorySegment floats(Arena arena, float... values) {
        MemorySegment m = arena.allocate((long) values.length * Float.BYTES);
        MemorySegment.copy(values, 0, m, F32, 0, values.length);
        return m;
    }

    @Test
    void shouldSeeWhatTheLayerMathComputesAtLayerZeroAndTheStageOutput() {
        int[] tokens = QuantTestModels.randomTokens(17, 3);
        try (OptModel model = OptModel.load(checkpoint); Arena arena = Arena.ofConfined()) {
            CalibrationCollector collector = new CalibrationCollector();
            runWith(model, List.of(tokens), collector);
            CalibrationStats stats = collector.stats(new CalibrationStats.Source("tiny", "random", 1, 17));

            // Direct computation from the weights: embeddings → LayerNorm (double, two-pass) → k_proj.
            int rows = tokens.length;
            int width = model.config().hiddenSize();
            MemorySegment embedded;
            MemorySegment finalHidden;
            try (Arena step = Arena.ofShared(); KvCache cache = model.newCache()) {
                List<SequenceChunk> chunks = List.of(new SequenceChunk(tokens, cache));
                MemorySegment hidden = model.embed(chunks, step);
                embedded = arena.allocate((long) rows * width * Float.BYTES);
                MemorySegment.copy(hidden, 0, embedded, 0, embedded.byteSize());
                model.runLayers(chunks, hidden, step);
                finalHidden = arena.allocate(embedded.byteSize());
                MemorySegment.copy(hidden, 0, finalHidden, 0, finalHidden.byteSize());
            }
            LayerWeights layer0 = model.weights().layers()[0];
            MemorySegment normed = layerNorm(embedded, rows, width, layer0.selfAttnLayerNorm(), arena);
            Linear k = (Linear) layer0.kProj();
            MemorySegment keys = arena.allocate((long) rows * width * Float.BYTES);
            ReferenceMatMul.matmulF32(normed, k.weight(), k.bias(), keys, rows, width, width);

            assertClose(rangeOf(normed, rows, width), stats.get(0, ActivationSite.QKV_INPUT), 1e-4f);
            assertClose(rangeOf(keys, rows, width), stats.get(0, ActivationSite.KEYS), 1e-4f);
            assertClose(rangeOf(finalHidden, rows, width),
                    stats.get(model.config().numLayers() - 1, ActivationSite.STAGE_OUTPUT), 0f);
        }
    }

    @Test
    void shouldReportGlobalLayerIndicesOnAStageThatDoesNotStartAtZero() {
        OptConfig config = TestModels.tinyConfig();
        try (OptModel stage = OptModel.load(checkpoint, new LayerRange(1, 3, 3));
             Arena step = Arena.ofShared(); KvCache cache = stage.newCache()) {
            int[] tokens = QuantTestModels.randomTokens(5, 4);
            MemorySegment hidden = step.allocate((long) tokens.length * config.hiddenSize() * Float.BYTES);
            SplittableRandom random = new SplittableRandom(5);
            for (long i = 0; i < (long) tokens.length * config.hiddenSize(); i++) {
                hidden.setAtIndex(F32, i, (float) random.nextGaussian());
            }
            CalibrationCollector collector = new CalibrationCollector();
            stage.runLayers(List.of(new SequenceChunk(tokens, cache)), hidden, step, collector);
            Set<Integer> layers = new TreeSet<>();
            collector.stats(new CalibrationStats.Source("", "", 1, 5)).entries().keySet().forEach(k -> layers.add(k.layer()));
            assertEquals(Set.of(1, 2), layers);
            assertEquals(5, collector.rows(2, ActivationSite.STAGE_OUTPUT));
            assertEquals(0, collector.rows(0, ActivationSite.QKV_INPUT));
        }
    }

    @Test
    void shouldRoundTripStatisticsThroughJsonBitForBit() {
        try (OptModel model = OptModel.load(checkpoint)) {
            int[] text = QuantTestModels.randomTokens(100, 6);
            CalibrationStats stats = Calibration.run(model, text, 5, 16, "random", Progress.NONE);
            assertEquals(5, stats.source().sequences());
            assertEquals(16 * 5, stats.get(0, ActivationSite.QKV_INPUT).rows());
            Path file = temp.resolve("calibration.json");
            stats.save(file);
            CalibrationStats loaded = CalibrationStats.load(file);
            assertEquals(stats.source(), loaded.source());
            assertEquals(stats.entries().keySet(), loaded.entries().keySet());
            stats.entries().forEach((key, expected) -> {
                ChannelStats actual = loaded.entries().get(key);
                assertArrayEquals(expected.min(), actual.min(), 0f);
                assertArrayEquals(expected.max(), actual.max(), 0f);
                assertArrayEquals(expected.absMax(), actual.absMax(), 0f);
                assertEquals(expected.rows(), actual.rows());
            });
        }
    }

    @Test
    void shouldUseOnlyTheWindowsTheCalibrationTextHas() {
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationStats stats = Calibration.run(model, QuantTestModels.randomTokens(50, 7), 128, 16, "short", Progress.NONE);
            assertEquals(3, stats.source().sequences());
            assertEquals(48, stats.get(2, ActivationSite.FC1_INPUT).rows());
        }
    }

    private static MemorySegment layerNorm(MemorySegment x, int rows, int width, LayerNormWeights norm, Arena arena) {
        MemorySegment out = arena.allocate((long) rows * width * Float.BYTES);
        for (int i = 0; i < rows; i++) {
            double mean = 0;
            for (int j = 0; j < width; j++) {
                mean += x.getAtIndex(F32, (long) i * width + j);
            }
            mean /= width;
            double variance = 0;
            for (int j = 0; j < width; j++) {
                double d = x.getAtIndex(F32, (long) i * width + j) - mean;
                variance += d * d;
            }
            variance /= width;
            double inverse = 1 / Math.sqrt(variance + OptConfig.LAYER_NORM_EPS);
            for (int j = 0; j < width; j++) {
                double normalised = (x.getAtIndex(F32, (long) i * width + j) - mean) * inverse;
                out.setAtIndex(F32, (long) i * width + j,
                        (float) (normalised * norm.gain().getAtIndex(F32, j) + norm.bias().getAtIndex(F32, j)));
            }
        }
        return out;
    }

    private static ChannelStats rangeOf(MemorySegment x, int rows, int width) {
        List<float[]> list = new ArrayList<>();
        for (int i = 0; i < rows; i++) {
            float[] row = new float[width];
            MemorySegment.copy(x, F32, (long) i * width * Float.BYTES, row, 0, width);
            list.add(row);
        }
        return direct(list);
    }

    private static void assertClose(ChannelStats expected, ChannelStats actual, float relative) {
        assertEquals(expected.rows(), actual.rows());
        for (int j = 0; j < expected.width(); j++) {
            float tolerance = relative * Math.max(1f, expected.absMax()[j]);
            assertEquals(expected.min()[j], actual.min()[j], tolerance, "min of channel " + j);
            assertEquals(expected.max()[j], actual.max()[j], tolerance, "max of channel " + j);
            assertEquals(expected.absMax()[j], actual.absMax()[j], tolerance, "absmax of channel " + j);
        }
    }
}
