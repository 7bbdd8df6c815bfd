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
     * The coordinator took the job into its queue (told before any other event of it): a streamed answer may start.
     * A job refused instead gets {@link JobFailed} with {@link FailureKind#OVERLOADED}.
     */
    record JobQueued(String requestId) implements JobEvent {
    }

    /** @param kind why, which decides the gateway's status (500, 503, 429, 504) */
    record JobFailed(String requestId, String reason, FailureKind kind) implements JobEvent {
        public JobFailed(String requestId, String reason) {
            this(requestId, reason, FailureKind.BROKEN);
        }
    }
}
