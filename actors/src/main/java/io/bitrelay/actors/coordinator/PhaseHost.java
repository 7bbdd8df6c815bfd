package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.worker.StageWorker;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.BehaviorBuilder;

/**
 * What a start-up phase run by a helper ({@link LinkCalibration}, {@link RecipeCalibration}) needs from the
 * coordinator: the handlers every phase shares, a way to fail the pipeline, and the address workers answer.
 */
interface PhaseHost {
    /**
     * Records that phase {@code name} began, adds the shared handlers (queueing and cancelling requests,
     * membership changes, status) after the phase's own, and builds the behaviour.
     */
    Behavior<Coordinator.Command> phase(Coordinator.Phase name, BehaviorBuilder<Coordinator.Command> handlers);

    /** Fails the pipeline: every queued request fails with {@code reason}. */
    Behavior<Coordinator.Command> fail(String reason);

    /**
     * Where workers answer the coordinator: its adapter for {@link StageWorker.Reply}, which arrive as
     * {@link Coordinator.WorkerReplied} (route them with {@link ReplyRoutes}).
     */
    ActorRef<StageWorker.Reply> replies();
}
