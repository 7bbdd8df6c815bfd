package io.bitrelay.actors.pipeline;

import io.bitrelay.actors.serialization.ClusterMessage;
import io.bitrelay.runtime.generate.SamplingParams;

/**
 * One micro-batch on its way through the pipeline: for each sequence the tokens it feeds this step and the
 * position the first of them takes; sampling travels only with a sequence's first chunk. A calibration
 * batch runs whole throwaway sequences (no KV cache kept, nothing sampled) so the stages can record the
 * ranges of what crosses their links.
 *
 * <p>A serving batch is resident: the coordinator sends a batch id's entries once (they join the batch), and the
 * first stage runs its steps on its own from then on, each with the tokens the last stage sampled for the one
 * before, until every member has stopped.
 */
public record MicroBatch(long batchId, int step, Entry[] entries, boolean calibration) implements ClusterMessage {

    /**
     * @param logprobs  top alternatives wanted per scored or sampled position, or −1 for no log-probabilities
     * @param targets   for a chunk of a prompt being scored: per token the prompt token it predicts (−1 for the
     *                  prompt's last), and nothing is sampled; null for generation
     * @param stop      for a generating sequence, when it stops: the first stage feeds each sampled token back in
     *                  until then, without the coordinator; null for a chunk that runs once (scoring, calibration)
     * @param generated tokens the sequence has generated before this entry
     * @param kvCapacity on a sequence's first chunk, the tokens its KV caches must hold (prompt + most new tokens); 0
     *                   for the model's whole context
     * @param partialPrompt the first stage's chunk of a prompt that goes on next step (nothing is sampled for it)
     */
    public record Entry(int sequenceId, int[] tokens, int startPosition, SamplingParams firstChunkSampling, int logprobs,
                        int[] targets, StopRule stop, int generated, int kvCapacity, boolean partialPrompt)
            implements ClusterMessage {
        public Entry(int sequenceId, int[] tokens, int startPosition, SamplingParams firstChunkSampling) {
            this(sequenceId, tokens, startPosition, firstChunkSampling, -1, null, null, 0, 0, false);
        }

        public Entry(int sequenceId, int[] tokens, int startPosition, SamplingParams firstChunkSampling, int logprobs,
                     int[] targets) {
            this(sequenceId, tokens, startPosition, firstChunkSampling, logprobs, targets, null, 0, 0, false);
        }

        /** A join from the coordinator: the whole prompt (or scored chunk), which the first stage may feed in chunks. */
        public Entry(int sequenceId, int[] tokens, int startPosition, SamplingParams firstChunkSampling, int logprobs,
                     int[] targets, StopRule stop, int generated, int kvCapacity) {
            this(sequenceId, tokens, startPosition, firstChunkSampling, logprobs, targets, stop, generated, kvCapacity, false);
        }

        /** Whether the first stage keeps feeding this sequence its own sampled tokens. */
        public boolean continues() {
            return stop != null;
        }
    }

    public int tokenCount() {
        int count = 0;
        for (Entry entry : entries) {
            count += entry.tokens().length;
        }
        return count;
    }
}
