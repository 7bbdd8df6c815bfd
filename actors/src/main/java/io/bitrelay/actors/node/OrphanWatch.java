package io.bitrelay.actors.node;

import io.bitrelay.actors.coordinator.Coordinator;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;

import java.time.Duration;
import java.util.stream.StreamSupport;

/**
 * Makes a worker node that has been without any coordinator node for {@code timeout} shut down (exit code
 * {@link NodeExit#NO_COORDINATOR}): its coordinator nodes were all lost (kill -9 of the only one, `bitrelay cluster`
 * killed), nobody will give it a stage again, and waiting for ever held its memory, its device and its Aeron client
 * (issue 15: "the workers were orphaned"). A supervisor (systemd, a pod's restart policy) starts it again, and it joins
 * when a coordinator node is back. While some coordinator node is a member, even an unreachable one (the resolver
 * decides about it), the worker is not orphaned. It only counts once it has seen a coordinator node: a worker still
 * joining is not an orphan.
 */
final class OrphanWatch {
    public static final String TIMEOUT_KEY = "bitrelay.worker.orphan-timeout";

    /** The coordinated shutdown's reason when a worker gives up waiting for a coordinator node. */
    enum NoCoordinator implements CoordinatedShutdown.Reason {
        REASON;

        @Override
        public String toString() {
            return "no coordinator node in the cluster for " + TIMEOUT_KEY;
        }
    }

    sealed interface Command {
    }

    private record Check() implements Command {
    }

    private OrphanWatch() {
    }

    /** @param timeout how long without a coordinator node before the node shuts down; must be positive */
    static Behavior<Command> create(Duration timeout) {
        Duration interval = Duration.ofMillis(Math.clamp(timeout.toMillis() / 4, 100, 1000));
        return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
            timers.startTimerWithFixedDelay(new Check(), interval);
            Cluster cluster = Cluster.get(context.getSystem());
            boolean[] sawCoordinator = {false};
            long[] orphanSince = {0};
            return Behaviors.receiveMessage(check -> {
                boolean present = StreamSupport.stream(cluster.state().getMembers().spliterator(), false)
                        .anyMatch(OrphanWatch::isCoordinatorNode);
                long now = System.nanoTime();
                if (present) {
                    if (orphanSince[0] != 0) {
                        context.getLog().info("a coordinator node is a member again: not orphaned");
                    }
                    sawCoordinator[0] = true;
                    orphanSince[0] = 0;
                } else if (sawCoordinator[0] && orphanSince[0] == 0) {
                    orphanSince[0] = now;
                    context.getLog().warn("no coordinator node in the cluster: this worker shuts down in {} unless one joins"
                            + " ({})", timeout, TIMEOUT_KEY);
                } else if (sawCoordinator[0] && now - orphanSince[0] >= timeout.toNanos()) {
                    context.getLog().error("no coordinator node in the cluster for {} ({}): shutting down (exit code {})",
                            timeout, TIMEOUT_KEY, NodeExit.NO_COORDINATOR);
                    CoordinatedShutdown.get(context.getSystem()).runAll(NoCoordinator.REASON);
                    return Behaviors.stopped();
                }
                return Behaviors.same();
            });
        }));
    }

    private static boolean isCoordinatorNode(Member member) {
        MemberStatus status = member.status();
        return member.hasRole(Coordinator.ROLE) && (status == MemberStatus.up() || status == MemberStatus.leaving()
                || status == MemberStatus.joining() || status == MemberStatus.weaklyUp());
    }
}
