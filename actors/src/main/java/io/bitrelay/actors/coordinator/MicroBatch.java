package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.serialization.ClusterMessage;
import io.bitrelay.runtime.generate.SamplingParams;

/**
 * One micro-batch on its way through the pipeline: for each sequence the tokens it feeds this step and the
 * position the first of them takes; sampling travels only with a sequence's first chunk. A calibration
 * batch runs whole throwaway sequences (no KV cache kept, nothing sampled) so the stages can record the
 * ranges of what crosses their links.
 */
public record MicroBatch(long batchId, int step, Entry[] entries, boolean calibration) implements ClusterMessage {

    public record Entry(int sequenceId, int[] tokens, int startPosition, SamplingParams firstChunkSampling) implements ClusterMessage {
    }

    public int tokenCount() {
        int count = 0;
        for (Entry entry : entries) {
            count += entry.tokens().length;
        }
        return count;
    }
}
