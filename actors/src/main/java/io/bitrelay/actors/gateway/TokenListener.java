package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.FinishReason;

import io.bitrelay.actors.coordinator.GenerationJob;

import io.bitrelay.runtime.eval.TokenScore;

import java.util.List;

/**
 * Receives one job's tokens in order, then exactly one terminal call. Calls may come from any thread
 * but never concurrently for one job.
 */
public interface TokenListener {
    void onToken(int tokenId);

    /**
     * Scores of a scoring job's prompt positions, in order, one chunk per call: the first call starts with
     * the prediction of prompt token 1. Only jobs with {@link GenerationJob#scorePrompt()} get them.
     */
    default void onPromptScores(List<TokenScore> scores) {
    }

    /** The log-probability of the token passed to the {@link #onToken} call that follows, for jobs that asked for logprobs. */
    default void onTokenScore(TokenScore score) {
    }

    /** @param reason EOS, MAX_TOKENS or CANCELLED */
    void onFinished(FinishReason reason);

    /** The job failed (a corrupt frame, a stage that could not compute it, …); {@code reason} is for the client. */
    void onFailed(String reason);

    /**
     * The job failed because no pipeline could serve it in time (bitrelay.coordinator.pending-timeout): the service is
     * unavailable, rather than broken for this job. By default, as {@link #onFailed}.
     */
    default void onUnavailable(String reason) {
        onFailed(reason);
    }

    /**
     * The backend took the job into its queue; told once (the cluster tells it before any other call for the job; the
     * single-process backend right after submit returns, so a first token may overtake it). A job refused instead
     * gets {@link #onOverloaded}, or the backend's submit threw.
     */
    default void onQueued() {
    }

    /** The coordinator's queue was full (bitrelay.coordinator.max-waiting): nothing was queued; retry later. */
    default void onOverloaded(String reason) {
        onUnavailable(reason);
    }

    /**
     * The job could not start or finish by its deadline (bitrelay.coordinator.request-deadline); the backend already
     * freed its sequence. By default, as {@link #onFailed}.
     */
    default void onDeadline(String reason) {
        onFailed(reason);
    }

}
