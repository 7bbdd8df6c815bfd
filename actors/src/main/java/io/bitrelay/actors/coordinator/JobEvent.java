package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.gateway.TokenListener.FinishReason;
import io.bitrelay.actors.serialization.ClusterMessage;

/** What the coordinator tells the gateway about one job, in order: tokens, then one terminal event. */
public sealed interface JobEvent extends ClusterMessage {
    String requestId();

    record TokenGenerated(String requestId, int token) implements JobEvent {
    }

    record JobFinished(String requestId, FinishReason reason) implements JobEvent {
    }

    record JobFailed(String requestId, String reason) implements JobEvent {
    }
}
