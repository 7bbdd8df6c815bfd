package io.bitrelay.actors.worker;

import io.bitrelay.actors.serialization.ClusterMessage;

/**
 * A stage's counters, for the bandwidth report and /metrics.
 *
 * @param outbound the link this stage publishes to, or null for the last stage
 */
public record StageStats(int stageIndex, String workerId, int firstLayer, int endLayer, LinkCounters outbound,
                         long rejectedFrames, String lastRejection, int cachedSequences, long kvCacheBytes,
                         long steps, long computeNanos) implements ClusterMessage {

    /**
     * Bytes one link carried.
     *
     * @param fp16WireBytes what the same frames would have cost with the FP16 codec, headers included
     */
    public record LinkCounters(int fromStage, int toStage, String codec, long frames, long tokens, long payloadBytes,
                               long wireBytes, long fp16WireBytes, long backPressureEvents) implements ClusterMessage {
    }
}
