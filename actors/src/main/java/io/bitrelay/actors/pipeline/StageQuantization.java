package io.bitrelay.actors.pipeline;

import io.bitrelay.actors.serialization.ClusterMessage;

/**
 * The quantization recipe a stage serves, as part of its {@link StageAssignment}.
 *
 * @param fingerprint   the checkpoint's {@code ModelFingerprint}, which stage files must carry
 * @param restoreFile   a saved stage (quantization store) matching the recipe and placement to load instead
 *                      of waiting for a plan; null when the coordinator will calibrate
 * @param restoreCrc32c the CRC32C the store's recipe.json recorded for that file
 */
public record StageQuantization(String recipe, float alpha, String fingerprint, String restoreFile, long restoreCrc32c)
        implements ClusterMessage {
}
