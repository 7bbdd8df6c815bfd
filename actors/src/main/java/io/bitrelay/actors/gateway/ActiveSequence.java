package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.FinishReason;

import io.bitrelay.actors.coordinator.GenerationJob;

import io.bitrelay.runtime.eval.LogSoftmax;
import io.bitrelay.runtime.generate.Sampler;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.SequenceChunk;

/**
 * One job while {@link LocalGenerationBackend} generates it: its sampler (and random stream), its KV cache
 * and what it feeds to the next step. Touched only by the scheduler thread. The cache is owned here from
 * admission until {@link #close}, which the scheduler calls exactly once when the job leaves the batch.
 */
final class ActiveSequence {
    final GenerationJob job;
    final TokenListener listener;
    private final Sampler sampler;
    private final KvCache cache;
    private int[] nextInput; // the whole prompt before the first step, then the last sampled token
    private int generated;

    ActiveSequence(GenerationJob job, TokenListener listener, KvCache cache) {
        this.job = job;
        this.listener = listener;
        this.sampler = new Sampler(job.sampling());
        this.cache = cache;
        this.nextInput = job.promptTokens();
    }

    SequenceChunk chunk() {
        return new SequenceChunk(nextInput, cache);
    }

    /** Samples this step's token and tells the listener; returns how the job ended, or null to go on. */
    FinishReason accept(float[] logits, int eosTokenId) {
        int token = sampler.next(logits);
        generated++;
        if (job.endsWithEos(token, generated, eosTokenId)) {
            return FinishReason.EOS;
        }
        if (job.logprobs() >= 0) {
            listener.onTokenScore(LogSoftmax.score(logits, token, job.logprobs()));
        }
        listener.onToken(token);
        if (generated >= job.maxNewTokens()) {
            return FinishReason.MAX_TOKENS;
        }
        nextInput = new int[]{token};
        return null;
    }

    void close() {
        cache.close();
    }
}
