package io.bitrelay.actors.node;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.worker.StageWorker;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * A worker node that stops on request (SIGTERM: a rolling restart, a scale-down) first asks the coordinator to take
 * its stage elsewhere, in coordinated shutdown's first phase, before it leaves the cluster and its stage stops: the
 * coordinator moves the stage to a standby (or the model over the survivors) and replays its sequences there, at once
 * instead of after a detection time, and the requests see a pause, not an error. A node the cluster downed skips it
 * (the coordinator gave it up already), and so does one that gave up waiting for a coordinator ({@link OrphanWatch}). Without an answer within bitrelay.worker.drain-timeout the node stops anyway:
 * its departure is then an ordinary loss, which the coordinator also replays.
 */
final class StageDrain {
    private StageDrain() {
    }

    static void register(ActorSystem<?> system, ActorRef<Coordinator.Command> coordinator, ActorRef<StageWorker.Command> worker,
                         String workerId, Duration timeout) {
        CoordinatedShutdown shutdown = CoordinatedShutdown.get(system);
        shutdown.addTask(CoordinatedShutdown.PhaseBeforeServiceUnbind(), "drain-stage", () -> {
            // downed: the coordinator gave it up already; orphaned: there is no coordinator to ask
            if (shutdown.getShutdownReason().filter(r -> r == CoordinatedShutdown.clusterDowningReason()
                    || r == OrphanWatch.NoCoordinator.REASON).isPresent()) {
                return CompletableFuture.completedFuture(Done.getInstance());
            }
            long start = System.nanoTime();
            return AskPattern.<Coordinator.Command, Coordinator.WorkerDrained>ask(coordinator,
                            replyTo -> new Coordinator.DrainWorker(worker, workerId, replyTo), timeout, system.scheduler())
                    .handle((drained, error) -> {
                        long millis = (System.nanoTime() - start) / 1_000_000;
                        if (error != null) {
                            system.log().warn("{} stops undrained: the coordinator did not answer within {} (bitrelay.worker."
                                    + "drain-timeout): {}", workerId, timeout, error.toString());
                        } else if (drained.stageIndex() >= 0) {
                            system.log().info("{} drained in {} ms: stage {} moved, its sequences replay there", workerId,
                                    millis, drained.stageIndex());
                        } else {
                            system.log().info("{} drained in {} ms: it held no stage", workerId, millis);
                        }
                        return Done.getInstance();
                    });
        });
    }
}
