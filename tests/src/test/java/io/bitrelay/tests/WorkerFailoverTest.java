package io.bitrelay.tests;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static io.bitrelay.tests.FailoverLoad.await;
import static io.bitrelay.tests.FailoverLoad.millis;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Worker loss under load (issue 15, first step): three worker JVMs serve 24 greedy requests at once (4 of them
 * streamed over HTTP), and the middle stage's worker is killed with SIGKILL mid-generation. Every request must
 * complete without an error and with exactly the tokens the single-process model gives, the running ones replayed
 * from their tokens so far. First a standby worker takes the lost stage; then, with no standby left, the two
 * survivors take the model over between them. Detection and recovery times are printed (the failure detector is
 * left as configured in configs/bitrelay.conf) and detection must take at most 4 s (the goal is 2 s; the margin is for
 * a loaded 2-core CI machine). The second loss comes 6 s after the first, within the Split Brain Resolver's
 * stable-after: two losses in a row must leave the coordinator, its node and the survivors up, and both lost nodes
 * downed and removed (left to the resolver, the second loss made it down every node).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class WorkerFailoverTest {
    private static final int REQUESTS = 24;
    private static final int STREAMED = 4;
    private static final int MAX_TOKENS = 32;
    /** The second kill's distance from the first: within the resolver's stable-after (7 s) of the first detection. */
    private static final Duration SECOND_LOSS_AFTER = Duration.ofSeconds(6);
    /** Detection is 1.5-2 s here; this leaves room for a loaded CI machine, and fails for Pekko's default detector. */
    private static final Duration MAX_DETECTION = Duration.ofSeconds(4);

    @TempDir
    static Path temp;
    static FailoverLoad load;
    static OptTokenizer tokenizer;
    static LocalCluster cluster;
    /** When the last kill happened (System.nanoTime), 0 before the first. */
    static long lastKill;

    @BeforeAll
    static void startClusterWithAStandby() throws Exception {
        Path checkpoint = ClusterFixture.writeModel(temp.resolve("model"));
        tokenizer = OptTokenizer.load(checkpoint);
        load = new FailoverLoad(checkpoint, tokenizer, REQUESTS, STREAMED, MAX_TOKENS);
        // No restarts: a restarted worker would be a standby, and the second loss must find none.
        cluster = ClusterFixture.start(checkpoint, "fp16", temp.resolve("logs"),
                Map.of("bitrelay.local-cluster.restart.max-restarts", 0));
        String standby = cluster.addWorker(line -> System.out.println("[cluster] " + line));
        await(() -> status().workers() == 4, "the standby " + standby + " joined", Duration.ofSeconds(60));
    }

    @AfterAll
    static void stopCluster() {
        ClusterFixture.close(cluster, tokenizer);
    }

    @Test
    @Order(1)
    @Timeout(120)
    void shouldFinishEveryRequestExactlyWhenAStandbyTakesTheLostMiddleStage() throws Exception {
        List<String> before = stageWorkers();
        assertEquals(3, before.size(), before.toString());
        killMiddleStageUnderLoad();
        List<String> after = stageWorkers();
        assertEquals(List.of(before.get(0), "worker-4", before.get(2)), after, "the standby took the lost stage, the others kept theirs");
    }

    @Test
    @Order(2)
    @Timeout(120)
    void shouldFinishEveryRequestExactlyWhenTheSurvivorsTakeTheModelOverWithoutAStandby() throws Exception {
        List<String> before = stageWorkers();
        killMiddleStageUnderLoad();
        List<String> after = stageWorkers();
        assertEquals(List.of(before.get(0), before.get(2)), after, "two stages over the survivors");
    }

    @Test
    @Order(3)
    @Timeout(60)
    void shouldKeepTheCoordinatorUpAndRemoveBothLostNodesAfterTwoLossesInARow() throws Exception {
        Cluster pekko = Cluster.get(cluster.node().system());
        // The coordinator's node, worker-1 and worker-3; worker-2 and worker-4 were killed 6 s apart.
        await(() -> java.util.stream.StreamSupport.stream(pekko.state().getMembers().spliterator(), false).count() == 3 && pekko.state().getUnreachable().isEmpty(),
                "both lost nodes downed and removed, every other member reachable", Duration.ofSeconds(45));
        System.out.printf("[failover] both lost nodes downed and removed %d ms after the second kill%n",
                millis(lastKill, System.nanoTime()));
        assertEquals(MemberStatus.up(), pekko.selfMember().status(), "the coordinator's node is still up");
        assertTrue(status().serving(), "the coordinator still serves");
    }

    /**
     * Sends every request, kills the middle stage's worker once each has tokens, and checks every answer. A second
     * kill comes {@link #SECOND_LOSS_AFTER} after the first, before the resolver alone would have downed the first
     * node (configs/bitrelay.conf and NodeDowning say why that downed every node).
     */
    private void killMiddleStageUnderLoad() throws Exception {
        Coordinator.Status serving = status();
        String victim = serving.stages()[1].workerId();
        List<FailoverLoad.Job> jobs = load.send(cluster);
        await(() -> jobs.stream().allMatch(j -> j.tokens() >= 3), "every request has its first tokens", Duration.ofSeconds(60));
        int tokensAtKill = jobs.stream().mapToInt(FailoverLoad.Job::tokens).sum();
        if (lastKill != 0) {
            long wait = lastKill + SECOND_LOSS_AFTER.toNanos() - System.nanoTime();
            if (wait > 0) {
                Thread.sleep(wait / 1_000_000);
            }
            System.out.printf("[failover] second kill %d ms after the first; unreachable then: %s%n",
                    millis(lastKill, System.nanoTime()), Cluster.get(cluster.node().system()).state().getUnreachable());
        }
        long killed = System.nanoTime();
        cluster.killWorker(victim);
        await(() -> !status().serving(), "the coordinator noticed " + victim + " is gone", Duration.ofSeconds(60));
        long detected = System.nanoTime();
        await(() -> status().serving(), "the pipeline serves again", Duration.ofSeconds(60));
        long recovered = System.nanoTime();
        for (FailoverLoad.Job job : jobs) {
            job.done.get(60, TimeUnit.SECONDS);
        }
        long resumed = jobs.stream().mapToLong(j -> j.firstTokenAfter(detected)).min().orElseThrow();
        long finished = System.nanoTime();
        System.out.printf("[failover] killed %s (stage 1 of %d) with %d of %d tokens generated: detected after %d ms,"
                        + " serving again after %d ms, first token of a replay after %d ms, all %d requests done after %d ms%n",
                victim, serving.stages().length, tokensAtKill, REQUESTS * MAX_TOKENS, millis(killed, detected),
                millis(killed, recovered), millis(killed, resumed), REQUESTS, millis(killed, finished));
        lastKill = killed;
        load.assertExact(jobs);
        assertTrue(millis(killed, detected) <= MAX_DETECTION.toMillis(), "detected after " + millis(killed, detected)
                + " ms, more than " + MAX_DETECTION);
    }

    private static List<String> stageWorkers() {
        return ClusterFixture.stageWorkers(cluster);
    }

    private static Coordinator.Status status() {
        return ClusterFixture.status(cluster);
    }
}
