package io.bitrelay.actors.pipeline;

import io.bitrelay.actors.serialization.ClusterMessage;

/** One inter-stage link: the Aeron channel and stream that stage {@code fromStage} publishes to and {@code toStage} reads. */
public record LinkEndpoint(int fromStage, int toStage, String channel, int streamId) implements ClusterMessage {
    public String describe() {
        return "stage " + fromStage + " → " + toStage + " (" + channel + " stream " + streamId + ")";
    }
}
