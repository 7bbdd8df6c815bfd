package io.bitrelay.actors.coordinator;

/**
 * Limits of the continuous-batching scheduler.
 *
 * @param microBatches       batches in flight at once; the number of stages keeps every stage busy
 * @param maxBatchSequences  sequences in one micro-batch at most
 * @param maxBatchTokens     tokens in one micro-batch at most (prefill chunks are long); a longer single
 *                           prompt still runs, alone
 * @param maxActiveSequences sequences holding KV cache at once; later jobs wait in admission order
 * @param kvTokens           KV cache positions the stages hold, summed over active sequences (each needs its prompt
 *                           plus its most new tokens); {@link Long#MAX_VALUE} where caches grow as they fill (CPU)
 */
public record SchedulerSettings(int microBatches, int maxBatchSequences, int maxBatchTokens, int maxActiveSequences,
                                long kvTokens) {
    public SchedulerSettings {
        if (microBatches < 1 || maxBatchSequences < 1 || maxBatchTokens < 1 || maxActiveSequences < 1 || kvTokens < 1) {
            throw new IllegalArgumentException("scheduler limits must be positive: " + this);
        }
    }

    /** Limits without a KV memory bound (until the stages report theirs). */
    public SchedulerSettings(int microBatches, int maxBatchSequences, int maxBatchTokens, int maxActiveSequences) {
        this(microBatches, maxBatchSequences, maxBatchTokens, maxActiveSequences, Long.MAX_VALUE);
    }

    public SchedulerSettings withMicroBatches(int count) {
        return new SchedulerSettings(count, maxBatchSequences, maxBatchTokens, maxActiveSequences, kvTokens);
    }

    /**
     * These limits for stages whose KV memory holds {@code kvTokens} positions (the fewest of any stage): sequences are
     * admitted while their caches, sized for each request, fit; and, when {@code autoBatchSequences}, micro-batches
     * as large as the active sequences spread over the micro-batches in flight (a fixed small cap left most of a
     * GPU's batch unused).
     *
     * @throws IllegalArgumentException when the stages hold no KV cache at all
     */
    public SchedulerSettings sizedFor(long kvTokens, boolean autoBatchSequences) {
        if (kvTokens < 1) {
            throw new IllegalArgumentException("the stages have no memory left for a KV cache");
        }
        int perBatch = autoBatchSequences ? Math.ceilDiv(maxActiveSequences, microBatches) : maxBatchSequences;
        return new SchedulerSettings(microBatches, perBatch, maxBatchTokens, maxActiveSequences, kvTokens);
    }
}
