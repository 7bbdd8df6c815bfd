package io.bitrelay.runtime.quant.store;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.checkpoint.HfCheckpoint;
import io.bitrelay.runtime.checkpoint.ModelFingerprint;
import io.bitrelay.runtime.checkpoint.SafetensorsFile;
import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.OptCheckpointLoader;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.quant.Calibration;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RangeEstimator;
import io.bitrelay.runtime.quant.RecipeApplier;
import io.bitrelay.runtime.quant.RecipeOptions;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import io.bitrelay.runtime.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(120)
class StageFileTest {
    @TempDir
    static Path temp;
    static Path checkpoint;
    static CalibrationStats stats;
    static String fingerprint;

    @BeforeAll
    static void calibrate() {
        checkpoint = SyntheticCheckpointWriter.write(temp.resolve("model"), TestModels.tinyConfig(),
                SyntheticOptions.defaults().withStorage(DType.F32).withOutliers(true));
        fingerprint = ModelFingerprint.of(checkpoint);
        try (OptModel model = OptModel.load(checkpoint)) {
            stats = Calibration.run(model, tokens(4 * 32, 5), 4, 32, "random", Progress.NONE);
        }
    }

    @Test
    void shouldGiveIdenticalLogitsAfterSaveAndLoad() throws Exception {
        for (QuantRecipe recipe : List.of(QuantRecipe.W8A8_SMOOTHQUANT, QuantRecipe.W8A8_SMOOTHQUANT_STATIC, QuantRecipe.W8A8_PER_TOKEN)) {
            LayerRange range = new LayerRange(1, 3, TestModels.tinyConfig().numLayers());
            StageFile.Identity identity = new StageFile.Identity(fingerprint, recipe.name(), 0.5f, 1, 3);
            Path file = temp.resolve(recipe.name()).resolve(StageFile.fileName(1, 3));
            StageFile.Written written;
            float[][] before;
            try (OptModel base = OptModel.load(checkpoint, range); OptModel quantized = RecipeApplier.apply(base, recipe, stats, 0.5f)) {
                written = StageFile.save(file, base, quantized, identity);
                before = stageOutput(quantized);
            }
            assertEquals(Files.size(file), written.bytes());
            try (OptModel base = OptModel.load(checkpoint, range);
                 OptModel restored = StageFile.load(file, base, identity, written.crc32c())) {
                float[][] after = stageOutput(restored);
                for (int i = 0; i < before.length; i++) {
                    assertArrayEquals(before[i], after[i], 0f, recipe.name() + " row " + i);
                }
            }
        }
    }

    /** What a GPU worker streaming a stored stage does: each layer rebuilt alone on its FP32 layer read alone. */
    @Test
    void shouldRebuildEachLayerAloneAsTheWholeStageLoads() {
        LayerRange range = new LayerRange(1, 3, TestModels.tinyConfig().numLayers());
        StageFile.Identity identity = new StageFile.Identity(fingerprint, "w8a8-smoothquant", 0.5f, 1, 3);
        Path file = temp.resolve("layer-by-layer").resolve(StageFile.fileName(1, 3));
        StageFile.Written written;
        try (OptModel base = OptModel.load(checkpoint, range);
             OptModel quantized = RecipeApplier.apply(base, QuantRecipe.W8A8_SMOOTHQUANT, stats, 0.5f)) {
            written = StageFile.save(file, base, quantized, identity);
        }
        try (OptModel base = OptModel.load(checkpoint, range);
             OptModel whole = StageFile.load(file, base, identity, written.crc32c());
             HfCheckpoint files = HfCheckpoint.open(checkpoint);
             StageFile.Reader reader = StageFile.Reader.open(file, identity, written.crc32c());
             Arena layers = Arena.ofShared()) {
            LayerWeights[] alone = new LayerWeights[range.count()];
            for (int local = 0; local < alone.length; local++) {
                alone[local] = reader.restoreLayer(local,
                        OptCheckpointLoader.loadLayer(files, base.config(), range.first() + local, layers), layers);
            }
            try (OptModel streamed = base.derive(base.weights().withLayers(alone), Arena.ofShared())) {
                float[][] expected = stageOutput(whole);
                float[][] actual = stageOutput(streamed);
                for (int i = 0; i < expected.length; i++) {
                    assertArrayEquals(expected[i], actual[i], 0f, "row " + i);
                }
            }
            QuantStoreException e = assertThrows(QuantStoreException.class,
                    () -> reader.restoreLayer(2, base.weights().layers()[0], layers));
            assertTrue(e.getMessage().contains("local layer 2"), e.getMessage());
        }
        QuantStoreException wrong = assertThrows(QuantStoreException.class, () -> StageFile.Reader.open(file,
                new StageFile.Identity(fingerprint, "w8a8-smoothquant", 0.5f, 0, 2), written.crc32c()));
        assertTrue(wrong.getMessage().contains(file.toString()), wrong.getMessage());
    }

    @Test
    void shouldGiveIdenticalLogitsOfTheWholeModelAfterSaveAndLoad() {
        StageFile.Identity identity = new StageFile.Identity(fingerprint, "w8a8-smoothquant", 0.5f, 0, 3);
        Path file = temp.resolve("whole").resolve(StageFile.fileName(0, 3));
        int[] window = tokens(20, 11);
        float[][] before;
        try (OptModel base = OptModel.load(checkpoint);
             OptModel quantized = RecipeApplier.apply(base, QuantRecipe.W8A8_SMOOTHQUANT, stats, 0.5f);
             KvCache cache = quantized.newCache()) {
            StageFile.save(file, base, quantized, identity);
            before = quantized.forward(List.of(new SequenceChunk(window, cache)), true);
        }
        try (OptModel base = OptModel.load(checkpoint); OptModel restored = StageFile.load(file, base, identity, -1);
             KvCache cache = restored.newCache()) {
            float[][] after = restored.forward(List.of(new SequenceChunk(window, cache)), true);
            for (int i = 0; i < before.length; i++) {
                assertArrayEquals(before[i], after[i], 0f, "position " + i);
            }
        }
    }

    @Test
    void shouldStoreInt8CodesAndReplacedLayerNormsUnderCheckpointNames() throws Exception {
        LayerRange range = LayerRange.all(TestModels.tinyConfig().numLayers());
        StageFile.Identity identity = new StageFile.Identity(fingerprint, "w8a8-smoothquant", 0.5f, 0, 3);
        Path file = temp.resolve("names").resolve(StageFile.fileName(0, 3));
        try (OptModel base = OptModel.load(checkpoint, range);
             OptModel quantized = RecipeApplier.apply(base, QuantRecipe.W8A8_SMOOTHQUANT, stats, 0.5f)) {
            StageFile.save(file, base, quantized, identity);
        }
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile stored = SafetensorsFile.open(file, arena);
            assertEquals(DType.I8, stored.info("model.decoder.layers.2.fc1.codes").dtype());
            assertEquals(DType.F32, stored.info("model.decoder.layers.0.self_attn.q_proj.scales").dtype());
            assertEquals(DType.F32, stored.info("model.decoder.layers.1.self_attn_layer_norm.weight").dtype());
            assertTrue(stored.metadata().get("bitrelay").contains("\"kind\":\"w8a8\""));
        }
    }

    @Test
    void shouldRejectAFileMadeForAnotherModelNamingTheMismatch() {
        LayerRange range = LayerRange.all(TestModels.tinyConfig().numLayers());
        StageFile.Identity identity = new StageFile.Identity(fingerprint, "w8a8-smoothquant", 0.5f, 0, 3);
        Path file = temp.resolve("mismatch").resolve(StageFile.fileName(0, 3));
        try (OptModel base = OptModel.load(checkpoint, range);
             OptModel quantized = RecipeApplier.apply(base, QuantRecipe.W8A8_SMOOTHQUANT, stats, 0.5f)) {
            StageFile.save(file, base, quantized, identity);
            String other = "0".repeat(64);
            QuantStoreException e = assertThrows(QuantStoreException.class,
                    () -> StageFile.load(file, base, new StageFile.Identity(other, "w8a8-smoothquant", 0.5f, 0, 3), -1));
            assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("model fingerprint"), e.getMessage());
            e = assertThrows(QuantStoreException.class,
                    () -> StageFile.load(file, base, new StageFile.Identity(fingerprint, "w8a8-smoothquant", 0.75f, 0, 3), -1));
            assertTrue(e.getMessage().contains("alpha 0.5 saved, 0.75 wanted"), e.getMessage());
        }
    }

    @Test
    void shouldRejectATruncatedOrDamagedFileNamingIt() throws Exception {
        LayerRange range = LayerRange.all(TestModels.tinyConfig().numLayers());
        StageFile.Identity identity = new StageFile.Identity(fingerprint, "w8a8-smoothquant", 0.5f, 0, 3);
        Path file = temp.resolve("truncated").resolve(StageFile.fileName(0, 3));
        try (OptModel base = OptModel.load(checkpoint, range);
             OptModel quantized = RecipeApplier.apply(base, QuantRecipe.W8A8_SMOOTHQUANT, stats, 0.5f)) {
            StageFile.Written written = StageFile.save(file, base, quantized, identity);
            byte[] bytes = Files.readAllBytes(file);
            Files.write(file, java.util.Arrays.copyOf(bytes, bytes.length - 100));
            QuantStoreException e = assertThrows(QuantStoreException.class, () -> StageFile.load(file, base, identity, -1));
            assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("truncated"), e.getMessage());
            e = assertThrows(QuantStoreException.class, () -> StageFile.load(file, base, identity, written.crc32c()));
            assertTrue(e.getMessage().contains("CRC32C"), e.getMessage());
            bytes[bytes.length - 10] ^= 1;
            Files.write(file, bytes);
            e = assertThrows(QuantStoreException.class, () -> StageFile.load(file, base, identity, written.crc32c()));
            assertTrue(e.getMessage().contains("damaged"), e.getMessage());
        }
    }

    @Test
    void shouldRoundTripTheRecipeIndexAndNameEveryDifference() {
        Path store = temp.resolve("recipe-store");
        SavedRecipe.Calibration calibration = new SavedRecipe.Calibration("", "", 4, 64, 7);
        SavedRecipe saved = new SavedRecipe("w8a8-smoothquant", 0.5f, RecipeOptions.LEGACY, checkpoint.toString(), fingerprint, calibration,
                SavedRecipe.STATS_FILE_NAME, 1.5, List.of(new SavedRecipe.Stage(0, 0, 2, "a", 10, 0xCAFEL),
                new SavedRecipe.Stage(1, 2, 3, "b", 20, 0xFFFFFFFFL)));
        assertNull(SavedRecipe.read(store));
        saved.write(store);
        SavedRecipe read = SavedRecipe.read(store);
        assertEquals(saved, read);
        assertTrue(read.differences("w8a8-smoothquant", 0.5f, RecipeOptions.LEGACY, fingerprint, calibration,
                List.of(new int[]{0, 2}, new int[]{2, 3})).isEmpty());
        List<String> differences = read.differences("w8a8-naive", 0.5f, RecipeOptions.LEGACY, fingerprint,
                new SavedRecipe.Calibration("", "", 8, 64, 7), List.of(new int[]{0, 1}, new int[]{1, 3}));
        assertEquals(3, differences.size(), differences.toString());
        assertTrue(differences.get(0).startsWith("recipe w8a8-smoothquant saved, w8a8-naive wanted"), differences.toString());
    }

    /** Issue 19: a store index names the recipe options it was built with; one written before them holds the legacy ones. */
    @Test
    void shouldNameEachChangedRecipeOptionAndReadAnIndexWithoutThemAsLegacy() throws Exception {
        Path store = temp.resolve("options-store");
        SavedRecipe.Calibration calibration = new SavedRecipe.Calibration("", "", 4, 64, 7);
        List<int[]> ranges = List.of(new int[]{0, 3});
        RecipeOptions built = new RecipeOptions(RangeEstimator.BATCH_MEAN, true, false);
        SavedRecipe saved = new SavedRecipe("w4a4-rptq-gptq", 0.5f, built, checkpoint.toString(), fingerprint, calibration,
                SavedRecipe.STATS_FILE_NAME, 1.5, List.of(new SavedRecipe.Stage(0, 0, 3, "a", 10, 1)));
        saved.write(store);
        assertEquals(built, SavedRecipe.read(store).options());
        assertTrue(SavedRecipe.read(store).differences("w4a4-rptq-gptq", 0.5f, built, fingerprint, calibration, ranges).isEmpty());
        List<String> differences = SavedRecipe.read(store).differences("w4a4-rptq-gptq", 0.5f,
                new RecipeOptions(RangeEstimator.MIN_MAX, false, true), fingerprint, calibration, ranges);
        assertEquals(List.of("activation ranges batch-mean saved, min-max wanted", "weights asymmetric saved, symmetric wanted",
                "bias correction off saved, on wanted"), differences);

        ObjectMapper json = new ObjectMapper();
        ObjectNode root = (ObjectNode) json.readTree(store.resolve(SavedRecipe.FILE_NAME).toFile());
        root.remove("options");
        json.writeValue(store.resolve(SavedRecipe.FILE_NAME).toFile(), root);
        SavedRecipe old = SavedRecipe.read(store);
        assertEquals(RecipeOptions.LEGACY, old.options());
        assertEquals(List.of("activation ranges min-max saved, batch-mean wanted", "weights symmetric saved, asymmetric wanted"),
                old.differences("w4a4-rptq-gptq", 0.5f, built, fingerprint, calibration, ranges));
    }

    /**
     * Issue 19: a stage file built with asymmetric weights is refused where symmetric ones are wanted (and the other way
     * round); a file written before the options existed (no "options" in its metadata) holds symmetric weights and
     * min-max ranges, and loads where those are wanted.
     */
    @Test
    void shouldRefuseAStageFileBuiltWithOtherRecipeOptionsAndReadOneWithoutThemAsLegacy() throws Exception {
        LayerRange range = LayerRange.all(TestModels.tinyConfig().numLayers());
        QuantRecipe asymmetric = QuantRecipe.W4A16.withAsymmetricWeights(true);
        RecipeOptions built = RecipeOptions.DEFAULT.effectiveFor(asymmetric);
        RecipeOptions symmetric = new RecipeOptions(RangeEstimator.BATCH_MEAN, false, false).effectiveFor(QuantRecipe.W4A16);
        StageFile.Identity identity = new StageFile.Identity(fingerprint, "w4a16", 0.5f, built, 0, 3);
        Path file = temp.resolve("options").resolve(StageFile.fileName(0, 3));
        try (OptModel base = OptModel.load(checkpoint, range);
             OptModel quantized = RecipeApplier.apply(base, asymmetric, stats, 0.5f)) {
            StageFile.save(file, base, quantized, identity);
            StageFile.load(file, base, identity, -1).close();
            QuantStoreException e = assertThrows(QuantStoreException.class, () -> StageFile.load(file, base,
                    new StageFile.Identity(fingerprint, "w4a16", 0.5f, symmetric, 0, 3), -1));
            assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("weights asymmetric saved, symmetric wanted"),
                    e.getMessage());

            eraseOptions(file);
            StageFile.load(file, base, new StageFile.Identity(fingerprint, "w4a16", 0.5f, RecipeOptions.LEGACY, 0, 3), -1).close();
            e = assertThrows(QuantStoreException.class, () -> StageFile.load(file, base, identity, -1));
            assertTrue(e.getMessage().contains("weights symmetric saved, asymmetric wanted"), e.getMessage());
        }
    }

    /** Blanks the "options" object out of a stage file's metadata, as files written before issue 19 have none (same size). */
    private static void eraseOptions(Path file) throws Exception {
        String bytes = new String(Files.readAllBytes(file), StandardCharsets.ISO_8859_1);
        int start = bytes.indexOf("\\\"options\\\":{");
        int end = bytes.indexOf("},", start) + 2;
        assertTrue(start > 0 && end > start, "options in the metadata");
        Files.write(file, (bytes.substring(0, start) + " ".repeat(end - start) + bytes.substring(end)).getBytes(StandardCharsets.ISO_8859_1));
    }

    @Test
    void shouldReportACorruptRecipeIndexByName() throws Exception {
        Path store = temp.resolve("corrupt-store");
        Files.createDirectories(store);
        Files.writeString(store.resolve(SavedRecipe.FILE_NAME), "{\"format\": \"bitrelay-quant-recipe/1\", \"recipe\": ");
        QuantStoreException e = assertThrows(QuantStoreException.class, () -> SavedRecipe.read(store));
        assertTrue(e.getMessage().contains("recipe.json") && e.getMessage().contains("corrupt"), e.getMessage());
    }

    private static float[][] stageOutput(OptModel stage) {
        int[] window = tokens(24, 9);
        try (Arena step = Arena.ofShared(); KvCache cache = stage.newCache()) {
            int width = stage.config().hiddenSize();
            var hidden = step.allocate((long) window.length * width * Float.BYTES, 64);
            var random = new SplittableRandom(3);
            for (long i = 0; i < (long) window.length * width; i++) {
                hidden.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
            }
            List<SequenceChunk> chunks = List.of(new SequenceChunk(window, cache));
            stage.runLayers(chunks, hidden, step);
            float[][] out = new float[window.length][width];
            for (int r = 0; r < window.length; r++) {
                java.lang.foreign.MemorySegment.copy(hidden, java.lang.foreign.ValueLayout.JAVA_FLOAT, (long) r * width * Float.BYTES,
                        out[r], 0, width);
            }
            return out;
        }
    }

    private static int[] tokens(int count, long seed) {
        return new SplittableRandom(seed).ints(count, 3, TestModels.tinyConfig().vocabSize()).toArray();
    }
}
