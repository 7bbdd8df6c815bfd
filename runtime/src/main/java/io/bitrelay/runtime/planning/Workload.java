package io.bitrelay.runtime.planning;

/**
 * The decode load a plan is predicted for.
 *
 * @param sequences      sequences decoding at once (continuous batching keeps this many active)
 * @param contextTokens  average tokens already in each sequence's KV cache while it decodes
 * @param microBatches   micro-batches circulating through the pipeline; 0 = one per stage, as the scheduler does
 */
public record Workload(int sequences, int contextTokens, int microBatches) {
    public Workload {
        if (sequences < 1 || contextTokens < 0 || microBatches < 0) {
            throw new IllegalArgumentException("workload needs ≥ 1 sequence, context ≥ 0 and micro-batches ≥ 0, got " + this);
        }
    }
}
