package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.GenerationJob;

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

    /**
     * Jobs reach the coordinator through one actor, in the order they are submitted here; each may take up to
     * bitrelay.coordinator.request-deadline. The coordinator may still refuse one (its queue is full): the listener
     * then hears {@link TokenListener#onOverloaded} instead of {@link TokenListener#onQueued}.
     */
    @Override
    public void submit(GenerationJob job, TokenListener listener) {
        submit(job, listener, null);
    }

    /** As {@link #submit(GenerationJob, TokenListener)}, with a deadline shorter than request-deadline (null: none). */
    public void submit(GenerationJob job, TokenListener listener, java.time.Duration deadline) {
        Coordinator.Status current = status.get();
        if (current != null && current.failed()) {
            throw new java.util.concurrent.RejectedExecutionException("the pipeline is down: " + current.error());
        }
        gateway.tell(new GatewayActor.SubmitJob(job, listener, deadline == null ? 0 : Math.max(1, deadline.toMillis())));
    }

    /**
     * Stops taking jobs and ends those still open after {@code grace} with an error their clients see
     * ({@link GatewayActor.EndJobs}); completes once none is open.
     */
    public java.util.concurrent.CompletionStage<GatewayActor.JobsEnded> endJobs(
            org.apache.pekko.actor.typed.ActorSystem<?> system, java.time.Duration grace) {
        return org.apache.pekko.actor.typed.javadsl.AskPattern.ask(gateway, replyTo -> new GatewayActor.EndJobs(grace, replyTo),
                grace.plusSeconds(5), system.scheduler());
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

    /** Sequences the coordinator runs, as of its last status; 0 before the first. */
    public int runningSequences() {
        Coordinator.Status current = status.get();
        return current == null ? 0 : current.active();
    }

    @Override
    public boolean ready() {
        Coordinator.Status current = status.get();
        return current != null && current.serving();
    }

    /** The coordinator's view: recipe (and KV cache), link codec, stages. */
    @Override
    public java.util.Map<String, String> describe() {
        Coordinator.Status current = status.get();
        if (current == null) {
            return java.util.Map.of();
        }
        java.util.Map<String, String> details = new java.util.LinkedHashMap<>();
        details.put("quantization", current.quantization());
        details.put("link_codec", current.linkCodecs().length == 0 ? "none" : current.linkCodecs()[0]);
        details.put("stages", Integer.toString(current.stages().length));
        details.put("phase", current.phase().label());
        return details;
    }

    public Coordinator.Status status() {
        return status.get();
    }
}
