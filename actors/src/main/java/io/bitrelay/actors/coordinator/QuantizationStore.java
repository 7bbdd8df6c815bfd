package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.pipeline.StageQuantization;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.RecipeOptions;
import io.bitrelay.runtime.quant.store.QuantStoreException;
import io.bitrelay.runtime.quant.store.SavedRecipe;
import io.bitrelay.runtime.quant.store.StageFile;
import org.slf4j.Logger;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * The coordinator's side of the quantization store ({@code bitrelay.quantization.store}): decides at
 * placement whether the saved recipe fits this start (same model fingerprint, recipe, α, the recipe options it uses,
 * calibration settings and layer ranges) so the stages restore their saved layers, and writes the recipe once a
 * calibration's stages are saved. A store that does not fit is logged with its file and every difference,
 * and the pipeline calibrates again (and overwrites it); nothing is reused unless everything matches.
 */
final class QuantizationStore {
    private final QuantizationSettings settings;
    private final String checkpoint;
    private final String fingerprint;
    private final Path directory; // null: no store
    private final SavedRecipe.Calibration calibration;

    QuantizationStore(QuantizationSettings settings, String checkpoint, String fingerprint) {
        this.settings = settings;
        this.checkpoint = checkpoint;
        this.fingerprint = fingerprint;
        this.directory = settings.store().isBlank() ? null : Path.of(settings.store()).toAbsolutePath();
        this.calibration = new SavedRecipe.Calibration(settings.calibrationText(), textDigest(settings.calibrationText()),
                settings.calibrationSequences(), settings.calibrationTokens(), settings.calibrationSeed());
    }

    String fingerprint() {
        return fingerprint;
    }

    boolean enabled() {
        return directory != null;
    }

    /**
     * What each stage (by index, with its [first, end) layers) serves: the saved stage files when the store's
     * recipe fits, otherwise nothing to restore (the coordinator calibrates).
     */
    StageQuantization[] assignments(List<int[]> layerRanges, Logger log) {
        StageQuantization[] stages = new StageQuantization[layerRanges.size()];
        SavedRecipe saved = matchingRecipe(layerRanges, log);
        for (int i = 0; i < stages.length; i++) {
            SavedRecipe.Stage stage = saved == null ? null : saved.stages().get(i);
            stages[i] = new StageQuantization(settings.recipe().name(), settings.options(), settings.alpha(), fingerprint,
                    stage == null ? null : directory.resolve(stage.file()).toString(), stage == null ? -1 : stage.crc32c());
        }
        return stages;
    }

    private SavedRecipe matchingRecipe(List<int[]> layerRanges, Logger log) {
        if (directory == null) {
            return null;
        }
        Path file = directory.resolve(SavedRecipe.FILE_NAME);
        SavedRecipe saved;
        try {
            saved = SavedRecipe.read(directory);
        } catch (QuantStoreException e) {
            log.warn("quantization store unusable, calibrating again: {}", e.getMessage());
            return null;
        }
        if (saved == null) {
            log.info("quantization store {}: no saved recipe yet, calibrating", directory);
            return null;
        }
        List<String> differences = saved.differences(settings.recipe().name(), settings.alpha(), storedOptions(), fingerprint,
                calibration, layerRanges);
        if (!differences.isEmpty()) {
            log.warn("quantization store {} does not match this start, calibrating again: {}", file, String.join("; ", differences));
            return null;
        }
        for (SavedRecipe.Stage stage : saved.stages()) {
            Path stageFile = directory.resolve(stage.file());
            long size = size(stageFile);
            if (size != stage.bytes()) {
                log.warn("quantization store {}: stage file {} has {} bytes, the recipe recorded {} (truncated or replaced), calibrating again",
                        file, stageFile, size < 0 ? "no" : size, stage.bytes());
                return null;
            }
        }
        log.info("quantization store {}: reusing {} (α = {}; {}) calibrated on {} × {} tokens", file, saved.recipe(), saved.alpha(),
                saved.options().describe(), saved.calibration().sequences(), saved.calibration().tokens());
        return saved;
    }

    /** The options the store records and compares: those the recipe uses (the stages' files record the same). */
    private RecipeOptions storedOptions() {
        return settings.options().effectiveFor(settings.recipe());
    }

    /** Where stage files go, or null without a store. */
    String stageFile(int firstLayer, int endLayer) {
        return directory == null ? null : directory.resolve(StageFile.fileName(firstLayer, endLayer)).toString();
    }

    /** Before calibrating: the old recipe must not pair with new stage files if this calibration stops halfway. */
    void forgetRecipe(Logger log) {
        if (directory == null) {
            return;
        }
        try {
            Files.createDirectories(directory);
            Files.deleteIfExists(directory.resolve(SavedRecipe.FILE_NAME));
        } catch (IOException e) {
            log.warn("quantization store {}: {}", directory, e.getMessage());
        }
    }

    void saveStats(CalibrationStats stats) {
        if (directory != null) {
            stats.save(directory.resolve(SavedRecipe.STATS_FILE_NAME));
        }
    }

    Path saveRecipe(List<SavedRecipe.Stage> stages, double calibrationSeconds) {
        new SavedRecipe(settings.recipe().name(), settings.alpha(), storedOptions(), checkpoint, fingerprint, calibration,
                SavedRecipe.STATS_FILE_NAME, calibrationSeconds, stages).write(directory);
        return directory.resolve(SavedRecipe.FILE_NAME);
    }

    private static long size(Path file) {
        try {
            return Files.isRegularFile(file) ? Files.size(file) : -1;
        } catch (IOException e) {
            return -1;
        }
    }

    private static String textDigest(String text) {
        if (text.isBlank()) {
            return "";
        }
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(Path.of(text))));
        } catch (IOException e) {
            throw new UncheckedIOException("bitrelay.quantization.calibration.text: cannot read " + text + ": " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
