package io.bitrelay.actors.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValueFactory;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Two cluster nodes in this JVM, a coordinator node and a worker node running {@link OrphanWatch}: the worker stays
 * while the coordinator node is a member, and shuts down with the watch's reason (exit code 69) once it has had no
 * coordinator node for the timeout.
 */
class OrphanWatchTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(1);

    private static ActorSystem<Void> node(String role, List<String> seeds) {
        Map<String, Object> settings = new HashMap<>();
        settings.put("pekko.remote.artery.canonical.hostname", "127.0.0.1");
        settings.put("pekko.remote.artery.canonical.port", 0);
        settings.put("pekko.cluster.roles", List.of(role));
        Config config = BitrelayConfig.load(settings, null)
                .withValue("pekko.cluster.seed-nodes", ConfigValueFactory.fromIterable(seeds));
        return ActorSystem.create(Behaviors.empty(), BitrelayNode.SYSTEM_NAME, config);
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within 30 s: " + what);
            }
            Thread.sleep(50);
        }
    }

    @Test
    void shouldShutAWorkerDownOnceNoCoordinatorNodeIsLeftForTheTimeout() throws Exception {
        ActorSystem<Void> coordinator = node("coordinator", List.of());
        ActorSystem<Void> worker = null;
        try {
            Cluster coordinatorCluster = Cluster.get(coordinator);
            coordinatorCluster.manager().tell(Join.create(coordinatorCluster.selfMember().address()));
            var address = coordinatorCluster.selfMember().address();
            worker = node("worker", List.of("pekko://" + BitrelayNode.SYSTEM_NAME + "@" + address.getHost().get() + ":"
                    + address.getPort().get()));
            worker.systemActorOf(OrphanWatch.create(TIMEOUT), "orphan-watch", Props.empty());
            Cluster workerCluster = Cluster.get(worker);
            await(() -> workerCluster.selfMember().status() == MemberStatus.up(), "the worker node is up");

            Thread.sleep(3 * TIMEOUT.toMillis());
            assertFalse(worker.getWhenTerminated().toCompletableFuture().isDone(),
                    "a worker with a coordinator node in its cluster stays");

            coordinator.terminate(); // leaves the cluster
            coordinator.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
            worker.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
            var reason = CoordinatedShutdown.get(worker).getShutdownReason().orElseThrow();
            assertEquals(OrphanWatch.NoCoordinator.REASON, reason);
            assertEquals(NodeExit.NO_COORDINATOR, NodeExit.codeFor(reason));
        } finally {
            coordinator.terminate();
            if (worker != null) {
                worker.terminate();
            }
        }
    }
}
