package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.serialization.ClusterMessage;

/**
 * The coordinator's share of time to first token, summed over the requests whose first token has come: waiting
 * (queued until the request joins a resident batch: a sequence slot, KV room, a batch with room) and the first step
 * (joined until its first token is back at the coordinator: the first stage's wait for its step, the prompt's
 * prefill, the links, sampling, the control messages). What a client sees beyond both is the gateway's and the
 * network's. A replayed request counts its first token once, from its first submission.
 */
public record FirstTokenTimes(long requests, long waitingNanos, long firstStepNanos) implements ClusterMessage {
    public static final FirstTokenTimes NONE = new FirstTokenTimes(0, 0, 0);

    FirstTokenTimes plus(long waiting, long firstStep) {
        return new FirstTokenTimes(requests + 1, waitingNanos + waiting, firstStepNanos + firstStep);
    }
}
