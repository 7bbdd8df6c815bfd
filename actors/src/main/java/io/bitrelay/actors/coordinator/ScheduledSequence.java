package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.pipeline.StopRule;
import io.bitrelay.runtime.eval.TokenScore;

import java.util.Arrays;

/**
 * One job as the {@link Scheduler} tracks it: where it stands in the pipeline, and what its client has already
 * received, so that it can be replayed on another pipeline when the one it ran on is lost (docs/failover.md).
 *
 * <p>A generating sequence keeps every token it sampled; replayed, it joins at position 0 with its prompt and those
 * tokens as one "prompt" (the first stage chunks it), its {@code generated} count (so its {@link StopRule} goes on
 * where it was), its sampling parameters (the new last stage has no sampler for it) and the same KV capacity. The
 * last chunk's sample is its next token, so the client sees a pause and no token twice.
 *
 * <p>A scoring sequence restarts its chunks from position 0: the new stages hold no cache of the scored prefix, and
 * re-scoring it costs one prefill; the scores the client already has are dropped when they come back again.
 */
final class ScheduledSequence<R> {
    final int id;
    final GenerationJob job;
    final StopRule stop;
    final R client;
    /** KV cache positions it needs: its prompt and its most new tokens. */
    final int kvTokens;
    /** What its next join feeds: the prompt (with the tokens so far, on a replay), or a scoring job's unscored rest. */
    int[] pendingInput;
    int inFlightLength;
    int position;
    /** Tokens sampled for it so far, all passed on to the client but the last when it was an EOS that ended it. */
    int generated;
    /** The resident batch holding it, or 0. */
    long batchId;
    boolean cancelled;
    /** Its sampling and KV capacity went out with its first join (on this pipeline). */
    boolean started;
    /** When it joined the queue, or went back to it for a replay ({@link Scheduler}'s clock). */
    long queuedAtNanos;
    /** {@link #joinedAtNanos} before the first join (a clock reading may be any long, 0 and negatives included). */
    static final long NOT_JOINED = Long.MIN_VALUE;
    /** When it first joined a resident batch ({@link Scheduler}'s clock), or {@link #NOT_JOINED}. A replay keeps it. */
    long joinedAtNanos = NOT_JOINED;
    /** When it was first submitted ({@link Scheduler}'s clock); a replay keeps it. */
    final long submittedAtNanos;
    /** When it must have finished ({@link Scheduler}'s clock), if {@link #deadline} is not null; a replay keeps it. */
    long deadlineNanos;
    /** How long it was given from its submission, or null for no deadline. */
    java.time.Duration deadline;
    /** Its client already had its last event (a deadline failed it): whatever ends it later is not told. */
    boolean clientTold;
    /** The first {@link #generated} of these are its tokens so far. */
    private int[] tokens = new int[0];
    /** Prompt scores its client has received, and those received since its last (re)start. */
    private int scoresDelivered;
    private int scoresReceived;

    ScheduledSequence(int id, GenerationJob job, R client, int eosTokenId, long queuedAtNanos) {
        this.id = id;
        this.job = job;
        this.stop = job.stopRule(eosTokenId);
        this.client = client;
        this.pendingInput = job.promptTokens();
        this.kvTokens = job.promptTokens().length + job.maxNewTokens();
        this.queuedAtNanos = queuedAtNanos;
        this.submittedAtNanos = queuedAtNanos;
    }

    /** Counts a sampled token and keeps it for a replay. */
    void sampled(int token) {
        if (generated == tokens.length) {
            tokens = Arrays.copyOf(tokens, Math.max(16, Math.min(2 * tokens.length, job.maxNewTokens())));
        }
        tokens[generated++] = token;
    }

    /** The tokens sampled so far, in order. */
    int[] tokensSoFar() {
        return Arrays.copyOf(tokens, generated);
    }

    /**
     * The scores of a chunk that came back that the client does not have yet: all of them, except for the prefix
     * a replay scores again. Null when there are none.
     */
    TokenScore[] undeliveredScores(TokenScore[] scores) {
        int skip = Math.clamp((long) scoresDelivered - scoresReceived, 0, scores.length);
        scoresReceived += scores.length;
        scoresDelivered = Math.max(scoresDelivered, scoresReceived);
        if (skip == scores.length) {
            return null;
        }
        return skip == 0 ? scores : Arrays.copyOfRange(scores, skip, scores.length);
    }

    /**
     * What its client already had from a coordinator that is gone (the gateway kept it): the tokens generated so far
     * (the first {@code tokens.length} of its StopRule's count) and, for a scoring job, the prompt scores received.
     * {@link #prepareReplay} then sends it as a replay.
     */
    void resumeFrom(int[] tokensSoFar, int promptScoresDelivered) {
        tokens = Arrays.copyOf(tokensSoFar, Math.max(tokensSoFar.length, Math.min(16, job.maxNewTokens())));
        generated = tokensSoFar.length;
        scoresDelivered = promptScoresDelivered;
    }

    /**
     * Puts it back to its start for another pipeline: position 0, no batch, sampling and KV capacity sent again;
     * a generating sequence feeds its prompt and its tokens so far, a scoring one its whole prompt.
     */
    void prepareReplay(long nowNanos) {
        int[] prompt = job.promptTokens();
        if (job.scorePrompt()) {
            pendingInput = prompt;
            scoresReceived = 0;
        } else {
            pendingInput = Arrays.copyOf(prompt, prompt.length + generated);
            System.arraycopy(tokens, 0, pendingInput, prompt.length, generated);
        }
        position = 0;
        inFlightLength = 0;
        batchId = 0;
        started = false;
        queuedAtNanos = nowNanos;
    }
}
