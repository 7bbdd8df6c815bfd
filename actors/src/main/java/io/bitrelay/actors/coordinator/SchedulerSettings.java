package io.bitrelay.actors.coordinator;

/**
 * Limits of the continuous-batching scheduler.
 *
 * @param microBatches      batches in flight at once; the number of stages keeps every stage busy
 * @param maxBatchSequences sequences in one micro-batch at most
 * @param maxBatchTokens    tokens in one micro-batch at most (prefill chunks are long); a longer single
 *                          prompt still runs, alone
 * @param maxActiveSequences sequences holding KV cache at once; later jobs wait in admission order
 */
public record SchedulerSettings(int microBatches, int maxBatchSequences, int maxBatchTokens, int maxActiveSequences) {
    public SchedulerSettings {
        if (microBatches < 1 || maxBatchSequences < 1 || maxBatchTokens < 1 || maxActiveSequences < 1) {
            throw new IllegalArgumentException("scheduler limits must be positive: " + this);
        }
    }

    public SchedulerSettings withMicroBatches(int count) {
        return new SchedulerSettings(count, maxBatchSequences, maxBatchTokens, maxActiveSequences);
    }
}
