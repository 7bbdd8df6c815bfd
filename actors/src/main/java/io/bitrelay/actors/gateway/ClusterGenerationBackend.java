package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.Coordinator;
import org.apache.pekko.actor.typed.ActorRef;

import java.util.concurrent.atomic.AtomicReference;

/** Generation through the cluster: jobs go to the coordinator singleton via the local {@link GatewayActor}. */
public final class ClusterGenerationBackend implements GenerationBackend {
    private final AtomicReference<Coordinator.Status> status;
    private ActorRef<GatewayActor.Command> gateway;

    public ClusterGenerationBackend(AtomicReference<Coordinator.Status> status) {
        this.status = status;
    }

    /** Connects the backend to its actor once the actor system has spawned it. */
    public void attach(ActorRef<GatewayActor.Command> gatewayActor) {
        this.gateway = gatewayActor;
    }

    @Override
    public void submit(GenerationJob job, TokenListener listener) {
        gateway.tell(new GatewayActor.SubmitJob(job, listener));
    }

    @Override
    public void cancel(String requestId) {
        gateway.tell(new GatewayActor.CancelJob(requestId));
    }

    @Override
    public int queueDepth() {
        Coordinator.Status current = status.get();
        return current == null ? 0 : current.waiting();
    }

    public Coordinator.Status status() {
        return status.get();
    }
}
