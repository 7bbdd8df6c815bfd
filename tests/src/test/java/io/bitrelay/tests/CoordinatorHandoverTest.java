package io.bitrelay.tests;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static io.bitrelay.tests.FailoverLoad.await;
import static io.bitrelay.tests.FailoverLoad.millis;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Coordinator loss under load (issue 15, the hand-over case): two coordinator + gateway nodes, the first (a JVM of its
 * own, the cluster's seed) holding the coordinator singleton, the second in this JVM with the gateway the requests go
 * to and the host's Aeron media driver; three worker JVMs. 24 greedy requests (8 streamed over HTTP, 8 answered whole
 * over HTTP, 8 through the gateway's backend) run when the first coordinator's JVM is killed with SIGKILL. The
 * singleton must move to this JVM's node, the new coordinator must gather the same workers again (none of them
 * restarted: they keep their Aeron clients, the driver is not in the lost JVM) and place a pipeline over them, and the
 * gateway must resume every request from the tokens its client has: every one completes without an error and with
 * exactly the single-process model's tokens.
 */
class CoordinatorHandoverTest {
    private static final int REQUESTS = 24;
    private static final int MAX_TOKENS = 32;
    private static final List<String> WORKERS = List.of("worker-1", "worker-2", "worker-3");

    @TempDir
    static Path temp;
    static FailoverLoad load;
    static OptTokenizer tokenizer;
    static LocalCluster cluster;

    @BeforeAll
    static void startClusterWithTwoCoordinatorNodes() throws Exception {
        Path checkpoint = ClusterFixture.writeModel(temp.resolve("model"));
        tokenizer = OptTokenizer.load(checkpoint);
        load = new FailoverLoad(checkpoint, tokenizer, REQUESTS, 8, 8, MAX_TOKENS);
        cluster = ClusterFixture.startWithLeadCoordinator(checkpoint, "fp16", temp.resolve("logs"), ClusterFixture.THREE_STAGES);
    }

    @AfterAll
    static void stopCluster() {
        ClusterFixture.close(cluster, tokenizer);
    }

    @Test
    @Timeout(180)
    void shouldFinishEveryRequestOfTheSurvivingGatewayExactlyWhenTheCoordinatorsNodeIsKilled() throws Exception {
        ClusterFixture.awaitThreeStages(cluster);
        Coordinator.Status before = ClusterFixture.status(cluster);
        // A false alarm while the JVMs start on a loaded host can hand the singleton over before the kill: then there is
        // nothing to test, and the message says so
        assertEquals(cluster.leadCoordinatorAddress(), before.node(), "the coordinator runs in coordinator-1 before the kill"
                + " (load average " + loadAverage() + ")");
        List<String> stagesBefore = ClusterFixture.stageWorkers(cluster);
        assertEquals(3, stagesBefore.size(), stagesBefore.toString());
        List<FailoverLoad.Job> jobs = load.send(cluster);
        await(() -> jobs.stream().limit(8).allMatch(j -> j.tokens() >= 3), "the streamed requests have their first tokens",
                Duration.ofSeconds(60));
        int tokensAtKill = jobs.stream().mapToInt(FailoverLoad.Job::tokens).sum();
        Map<String, Long> workerPids = new java.util.TreeMap<>();
        for (String worker : WORKERS) {
            workerPids.put(worker, cluster.workerProcess(worker).pid());
        }
        long killed = System.nanoTime();
        int exit = cluster.killCoordinator();
        await(() -> handedOver(before), "a coordinator of another incarnation answers from this JVM's node",
                Duration.ofSeconds(60));
        long handedOver = System.nanoTime();
        await(() -> servingAgain(before), "the new coordinator serves", Duration.ofSeconds(60));
        long serving = System.nanoTime();
        load.assertExact(jobs);
        long finished = System.nanoTime();
        // the first token the new coordinator's pipeline produced (tokens of the lost one may arrive just after the kill)
        long resumedFirst = jobs.stream().limit(8).mapToLong(j -> j.firstTokenAfter(serving)).min().orElseThrow();
        Coordinator.Status after = ClusterFixture.status(cluster);
        System.out.printf("[handover] killed %s (exit %d) with %d tokens streamed so far: a new coordinator answered after"
                        + " %d ms, serving after %d ms, first streamed token of the new pipeline after %d ms, all %d requests exact after %d ms;"
                        + " %d resumed by the gateway, stages %s%n", "coordinator-1", exit, tokensAtKill,
                millis(killed, handedOver), millis(killed, serving), millis(killed, resumedFirst), REQUESTS,
                millis(killed, finished), after.resumed(), List.of(after.stages()).stream().map(Coordinator.StageView::workerId).toList());
        assertEquals(137, exit, "the lead coordinator died of the SIGKILL");
        assertEquals(cluster.node().seedAddress(), after.node(), "the singleton moved to this JVM's node");
        assertTrue(after.resumed() > 0, "the gateway resumed the requests the lost coordinator ran");
        assertEquals(3, after.stages().length, "a pipeline over the same three workers");
        for (String worker : WORKERS) {
            assertEquals(workerPids.get(worker), cluster.workerProcess(worker).pid(),
                    worker + " kept running (and its Aeron client): the same JVM before and after the hand-over");
        }
    }

    private static double loadAverage() {
        return java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    }

    /** This JVM's node answers for a coordinator started after the lost one. */
    private static boolean handedOver(Coordinator.Status before) {
        Coordinator.Status now = cluster.status();
        return now != null && !now.incarnation().equals(before.incarnation());
    }

    private static boolean servingAgain(Coordinator.Status before) {
        Coordinator.Status now = cluster.status();
        return now != null && !now.incarnation().equals(before.incarnation()) && now.serving();
    }
}
