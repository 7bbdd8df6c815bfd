package io.bitrelay.actors.pipeline;

import io.bitrelay.actors.serialization.ClusterMessage;

/**
 * Channels [offset, offset + min.length) of one (layer, site) of calibration statistics: the unit in which
 * statistics travel between the stages and the coordinator, both ways (stats up, each stage's plan part
 * down). Pekko Artery refuses messages over its maximum frame size (256 KiB by default); a chunk holds at
 * most {@link StatsChunks#MAX_CHANNELS} channels, 3 × 4 bytes each, so it stays near 192 KiB whatever the
 * model (OPT-175B's fc2 input alone is 49152 channels wide, 590 KB).
 *
 * @param width  the site's full channel count
 * @param rows   rows the statistics were taken over
 * @param chunks how many chunks the whole message (one stage's statistics or plan part) has
 */
public record StatsChunk(int stageIndex, int layer, String site, int offset, int width, long rows, float[] min, float[] max,
                         float[] absMax, int chunks) implements ClusterMessage {
}
