package io.bitrelay.actors.coordinator;

/**
 * Why a job failed, so the gateway can answer with the status that tells its client what to do: retry later (429,
 * 503), give up on this request (504), or report a fault (500).
 */
public enum FailureKind {
    /** It broke while it ran (a stage failed, a frame was lost): 500. */
    BROKEN,
    /** No pipeline could serve it within pending-timeout: 503. */
    UNAVAILABLE,
    /** The coordinator's queue was full (max-waiting), so it was never queued: 429 with Retry-After. */
    OVERLOADED,
    /** It could not start, or finish, by its deadline (request-deadline); its sequence is freed: 504. */
    DEADLINE
}
