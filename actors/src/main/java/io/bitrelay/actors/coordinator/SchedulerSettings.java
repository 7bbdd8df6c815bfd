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

    /**
     * These limits for stages whose KV memory holds {@code kvSequences} sequences at their full context: no more
     * sequences active than that, and, when {@code autoBatchSequences}, micro-batches as large as the active
     * sequences spread over the micro-batches in flight (a fixed small cap left most of a GPU's batch unused).
     *
     * @throws IllegalArgumentException when the stages hold not even one sequence
     */
    public SchedulerSettings sizedFor(int kvSequences, boolean autoBatchSequences) {
        if (kvSequences < 1) {
            throw new IllegalArgumentException("the stages have no memory left for one sequence's KV cache");
        }
        int active = Math.min(maxActiveSequences, kvSequences);
        int perBatch = autoBatchSequences ? Math.ceilDiv(active, microBatches) : maxBatchSequences;
        return new SchedulerSettings(microBatches, perBatch, maxBatchTokens, active);
    }
}
