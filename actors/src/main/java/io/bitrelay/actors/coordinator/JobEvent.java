package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.serialization.ClusterMessage;
import io.bitrelay.runtime.eval.TokenScore;

/** What the coordinator tells the gateway about one job, in order: tokens, then one terminal event. */
public sealed interface JobEvent extends ClusterMessage {
    String requestId();

    /** @param score the token's log-probability when the job asked for logprobs, else null */
    record TokenGenerated(String requestId, int token, TokenScore score) implements JobEvent {
        public TokenGenerated(String requestId, int token) {
            this(requestId, token, null);
        }
    }

    /** The next chunk of a scoring job's prompt scores, in prompt order. */
    record PromptScored(String requestId, TokenScore[] scores) implements JobEvent {
    }

    record JobFinished(String requestId, FinishReason reason) implements JobEvent {
    }

    /**
     * @param unavailable no pipeline could serve the job within bitrelay.coordinator.pending-timeout (the gateway
     *                    answers 503), rather than a failure while it ran (500)
     */
    record JobFailed(String requestId, String reason, boolean unavailable) implements JobEvent {
        public JobFailed(String requestId, String reason) {
            this(requestId, reason, false);
        }
    }
}
