package io.bitrelay.actors.coordinator;

import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.BehaviorBuilder;

/**
 * What a start-up phase run by a helper ({@link LinkCalibration}, {@link RecipeCalibration}) needs from the
 * coordinator: the handlers every phase shares, and a way to fail the pipeline.
 */
interface PhaseHost {
    /**
     * Records that phase {@code name} began, adds the shared handlers (queueing and cancelling requests,
     * membership changes, status) after the phase's own, and builds the behaviour.
     */
    Behavior<Coordinator.Command> phase(Coordinator.Phase name, BehaviorBuilder<Coordinator.Command> handlers);

    /** Fails the pipeline: every queued request fails with {@code reason}. */
    Behavior<Coordinator.Command> fail(String reason);
}
