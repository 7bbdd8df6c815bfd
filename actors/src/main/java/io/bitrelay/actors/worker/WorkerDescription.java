package io.bitrelay.actors.worker;

import io.bitrelay.actors.serialization.ClusterMessage;
import io.bitrelay.actors.worker.StageWorker;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * What a worker tells the coordinator about itself, for placement.
 *
 * @param host        where the worker runs: stages on the same host link over Aeron IPC, others over UDP
 * @param device      "cpu" or "cuda:N"
 * @param memoryBytes memory the worker may fill with weights and KV cache
 * @param dataPort    UDP port its inbound link listens on when the upstream stage is on another host
 * @param streamsUpTo the highest Aeron stream id of the links of a stage it was given, 0 for none: a coordinator that
 *                    takes over from a lost one places its pipelines above it, so that no new link shares a stream
 *                    with a stage of the lost coordinator's still publishing
 */
public record WorkerDescription(ActorRef<StageWorker.Command> worker, String workerId, String host, String device,
                                long memoryBytes, int dataPort, int streamsUpTo) implements ClusterMessage {
    /** A worker that was never given a stage. */
    public WorkerDescription(ActorRef<StageWorker.Command> worker, String workerId, String host, String device,
                             long memoryBytes, int dataPort) {
        this(worker, workerId, host, device, memoryBytes, dataPort, 0);
    }
}
