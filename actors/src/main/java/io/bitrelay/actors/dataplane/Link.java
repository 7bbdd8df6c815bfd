package io.bitrelay.actors.dataplane;

/**
 * One data-plane link: activations from {@code sourceStage} to the next stage, {@code destinationStage},
 * over one Aeron channel and stream. Both ends build the same Link (see {@link LinkChannels}).
 *
 * @param sourceStage      pipeline index of the publishing stage
 * @param destinationStage pipeline index of the subscribing stage
 * @param channel          Aeron channel URI, {@code aeron:ipc} or {@code aeron:udp?endpoint=host:port|...}
 * @param streamId         Aeron stream id, unique per link on a channel
 */
public record Link(int sourceStage, int destinationStage, String channel, int streamId) {

    public Link {
        if (channel == null || !channel.startsWith("aeron:")) {
            throw new IllegalArgumentException("link channel must be an aeron: URI, got " + channel);
        }
    }

    public boolean isIpc() {
        return channel.startsWith("aeron:ipc");
    }

    /** For logs and errors: "stage 1 → 2 on aeron:ipc stream 1001". */
    public String describe() {
        return "stage " + sourceStage + " → " + destinationStage + " on " + channel + " stream " + streamId;
    }

    @Override
    public String toString() {
        return describe();
    }
}
