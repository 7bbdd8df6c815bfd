package io.bitrelay.actors.coordinator;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.actors.pipeline.StageQuantization;
import io.bitrelay.runtime.quant.store.SavedRecipe;
import io.bitrelay.runtime.quant.store.StageFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Whether the coordinator hands the stages a saved recipe to restore (issue 19: the recipe options it uses count). The
 * stage files are stand-ins of the recorded size: the coordinator checks sizes, the workers check the rest.
 */
class QuantizationStoreTest {
    private static final Logger LOG = LoggerFactory.getLogger(QuantizationStoreTest.class);
    private static final String FINGERPRINT = "f".repeat(64);
    private static final List<int[]> LAYERS = List.of(new int[]{0, 2}, new int[]{2, 3});

    @TempDir
    Path store;

    @Test
    void shouldRestoreOnlyAStoreBuiltWithTheRecipeOptionsOfThisStart() throws IOException {
        save(Map.of("bitrelay.quantization.recipe", "w4a4-rptq-gptq"));
        assertRestores(Map.of("bitrelay.quantization.recipe", "w4a4-rptq-gptq"));
        assertCalibrates(Map.of("bitrelay.quantization.recipe", "w4a4-rptq-gptq", "bitrelay.quantization.activation-ranges", "min-max"));
        assertCalibrates(Map.of("bitrelay.quantization.recipe", "w4a4-rptq-gptq", "bitrelay.quantization.weights", "symmetric"));
        assertCalibrates(Map.of("bitrelay.quantization.recipe", "w4a4-rptq-gptq", "bitrelay.quantization.bias-correction", "on"));
    }

    /** An option the recipe does not use changes nothing it builds, so it does not throw a store away. */
    @Test
    void shouldIgnoreOptionsTheRecipeDoesNotUse() throws IOException {
        save(Map.of("bitrelay.quantization.recipe", "w4a16"));
        assertRestores(Map.of("bitrelay.quantization.recipe", "w4a16", "bitrelay.quantization.activation-ranges", "min-max",
                "bitrelay.quantization.bias-correction", "on"));
        assertCalibrates(Map.of("bitrelay.quantization.recipe", "w4a16", "bitrelay.quantization.weights", "symmetric"));
    }

    /**
     * A recipe.json written before the options existed was built with extremes and symmetric weights: it serves a start
     * that asks for those and is rebuilt by one with the new defaults (nothing lost, nothing misread); a W8A8 store,
     * which none of the options change, stays reusable under the new defaults.
     */
    @Test
    void shouldReadAStoreWrittenBeforeTheOptionsAsTheLegacyOnes() throws IOException {
        Map<String, Object> legacy = Map.of("bitrelay.quantization.recipe", "w4a4-rptq-gptq",
                "bitrelay.quantization.activation-ranges", "min-max", "bitrelay.quantization.weights", "symmetric");
        save(legacy);
        eraseOptions();
        assertRestores(legacy);
        assertCalibrates(Map.of("bitrelay.quantization.recipe", "w4a4-rptq-gptq"));

        Map<String, Object> smoothQuant = Map.of("bitrelay.quantization.recipe", "w8a8-smoothquant");
        save(smoothQuant);
        eraseOptions();
        assertRestores(smoothQuant);
    }

    private void save(Map<String, Object> overrides) throws IOException {
        QuantizationStore quantizationStore = store(overrides);
        quantizationStore.forgetRecipe(LOG);
        List<SavedRecipe.Stage> stages = List.of(stage(0, 0, 2), stage(1, 2, 3));
        quantizationStore.saveRecipe(stages, 1.0);
    }

    private SavedRecipe.Stage stage(int index, int first, int end) throws IOException {
        String name = StageFile.fileName(first, end);
        Files.write(store.resolve(name), new byte[16 + index]);
        return new SavedRecipe.Stage(index, first, end, name, 16 + index, 0);
    }

    private void eraseOptions() throws IOException {
        ObjectMapper json = new ObjectMapper();
        Path file = store.resolve(SavedRecipe.FILE_NAME);
        ObjectNode root = (ObjectNode) json.readTree(file.toFile());
        root.remove("options");
        json.writeValue(file.toFile(), root);
    }

    private QuantizationStore store(Map<String, Object> overrides) {
        Map<String, Object> settings = new HashMap<>(overrides);
        settings.put("bitrelay.quantization.store", store.toString());
        return new QuantizationStore(QuantizationSettingsTest.settings(settings), "/models/x", FINGERPRINT);
    }

    private void assertRestores(Map<String, Object> overrides) {
        StageQuantization[] stages = store(overrides).assignments(LAYERS, LOG);
        assertNotNull(stages[0].restoreFile(), "restores under " + overrides);
        assertEquals(store.resolve(StageFile.fileName(2, 3)).toString(), stages[1].restoreFile());
    }

    private void assertCalibrates(Map<String, Object> overrides) {
        StageQuantization[] stages = store(overrides).assignments(LAYERS, LOG);
        assertNull(stages[0].restoreFile(), "calibrates under " + overrides);
        assertEquals(QuantizationSettingsTest.settings(overrides).options(), stages[0].options(), "the stages learn the options");
    }
}
