package io.bitrelay.actors.worker;

import io.bitrelay.actors.serialization.ClusterMessage;

/**
 * A stage's counters, for the bandwidth report and /metrics.
 *
 * @param outbound   the link this stage publishes to, or null for the last stage
 * @param phaseNanos where the stage's step time went, indexed by {@link StepPhase#ordinal()}
 */
public record StageStats(int stageIndex, String workerId, int firstLayer, int endLayer, LinkCounters outbound,
                         long rejectedFrames, String lastRejection, int cachedSequences, long kvCacheBytes,
                         long steps, long computeNanos, long[] phaseNanos) implements ClusterMessage {

    /** Nanoseconds this stage spent in {@code phase} over every step so far. */
    public long nanos(StepPhase phase) {
        return phaseNanos == null || phase.ordinal() >= phaseNanos.length ? 0 : phaseNanos[phase.ordinal()];
    }

    /**
     * Bytes one link carried.
     *
     * @param fp16WireBytes what the same frames would have cost with the FP16 codec, headers included
     */
    public record LinkCounters(int fromStage, int toStage, String codec, long frames, long tokens, long payloadBytes,
                               long wireBytes, long fp16WireBytes, long backPressureEvents) implements ClusterMessage {
    }
}
