package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.pipeline.LinkEndpoint;
import io.bitrelay.actors.pipeline.WorkerDescription;

/** Chooses each link's Aeron channel: IPC between stages on one host (through the shared driver), UDP across hosts. */
final class LinkPlanner {
    private LinkPlanner() {
    }

    static LinkEndpoint link(int fromStage, WorkerDescription from, WorkerDescription to, int streamBase) {
        String channel = from.host().equals(to.host())
                ? "aeron:ipc"
                : "aeron:udp?endpoint=" + to.host() + ":" + to.dataPort();
        return new LinkEndpoint(fromStage, fromStage + 1, channel, streamBase + fromStage);
    }
}
