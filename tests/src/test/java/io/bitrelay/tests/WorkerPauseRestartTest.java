package io.bitrelay.tests;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.node.NodeExit;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static io.bitrelay.tests.FailoverLoad.await;
import static io.bitrelay.tests.FailoverLoad.millis;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A worker frozen longer than detection, then thawed (issue 15: "paused workers"), and the local cluster's restarts.
 * Three worker JVMs serve 16 greedy requests (4 streamed over HTTP); the middle stage's worker gets SIGSTOP, as a long
 * GC pause or a VM stall would freeze it. The coordinator's node downs it and the two survivors take the model over:
 * every request completes without an error and with the single-process model's tokens. The worker stays frozen
 * beyond Aeron's 10 s client liveness (it comes back with a dead Aeron client, as in the issue), then gets SIGCONT:
 * it must find itself removed and exit with {@link NodeExit#REMOVED_FROM_CLUSTER}, and LocalCluster must start it
 * again as a new node, a standby. Then a SIGKILL of a stage worker: the restarted worker takes its stage (the requests
 * again exact), and the killed one is restarted too, so the cluster is back at three workers.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class WorkerPauseRestartTest {
    private static final int REQUESTS = 16;
    private static final int STREAMED = 4;
    private static final int MAX_TOKENS = 32;
    /** Beyond Aeron's client liveness (10 s): the paused worker's Aeron client is dead when it resumes. */
    private static final Duration PAUSE = Duration.ofSeconds(12);
    /** Detection is 1.5-2 s here; room for a loaded CI machine (WorkerFailoverTest's bound). */
    private static final Duration MAX_DETECTION = Duration.ofSeconds(4);
    /** Process.exitValue of a JVM killed by SIGKILL: 128 + 9. */
    private static final int KILLED = 137;
    /** Process.exitValue of a JVM that exits on SIGTERM (its shutdown hooks ran): 128 + 15. */
    private static final int SIGTERMED = 143;

    @TempDir
    static Path temp;
    static LocalCluster cluster;
    static OptTokenizer tokenizer;
    static FailoverLoad load;

    @AfterAll
    static void stopCluster() {
        ClusterFixture.close(cluster, tokenizer);
    }

    @BeforeAll
    static void startCluster() throws Exception {
        Path checkpoint = ClusterFixture.writeModel(temp.resolve("model"));
        tokenizer = OptTokenizer.load(checkpoint);
        load = new FailoverLoad(checkpoint, tokenizer, REQUESTS, STREAMED, MAX_TOKENS);
        cluster = ClusterFixture.start(checkpoint, "fp16", temp.resolve("logs"),
                Map.of("bitrelay.local-cluster.restart.min-backoff", "500ms"));
    }

    @Test
    @Order(1)
    @Timeout(120)
    void shouldReplayAPausedWorkersSequencesThenRestartItWhenItResumesAndExits() throws Exception {
        String victim = stageWorkers().get(1);
        long victimPid = cluster.workerProcess(victim).pid();
        CompletableFuture<Long> exitedAt = cluster.workerProcess(victim).onExit().thenApply(p -> System.nanoTime());

        List<FailoverLoad.Job> jobs = load.send(cluster);
        await(() -> jobs.stream().allMatch(j -> j.tokens() >= 3), "every request has its first tokens", Duration.ofSeconds(60));
        long paused = System.nanoTime();
        cluster.pauseWorker(victim);
        await(() -> !status().serving(), "the coordinator noticed " + victim + " is frozen", Duration.ofSeconds(30));
        long detected = System.nanoTime();
        await(() -> status().serving(), "the pipeline serves again", Duration.ofSeconds(60));
        long servingAgain = System.nanoTime();
        load.assertExact(jobs);
        long allDone = System.nanoTime();
        List<String> survivors = stageWorkers();
        assertEquals(2, survivors.size(), "the two survivors took the model over: " + survivors);
        assertTrue(!survivors.contains(victim), survivors.toString());
        assertTrue(millis(paused, detected) <= MAX_DETECTION.toMillis(), "detected after " + millis(paused, detected) + " ms");

        long rest = PAUSE.toMillis() - millis(paused, System.nanoTime());
        if (rest > 0) {
            Thread.sleep(rest);
        }
        long resumed = System.nanoTime();
        cluster.resumeWorker(victim);
        long exited = exitedAt.get(30, TimeUnit.SECONDS);
        await(() -> !cluster.workerExitCodes(victim).isEmpty(), "LocalCluster saw " + victim + " exit", Duration.ofSeconds(10));
        assertEquals(List.of(NodeExit.REMOVED_FROM_CLUSTER), cluster.workerExitCodes(victim), victim + "'s exit code");
        // Why it left, in its own words (its log's last lines: the quarantine, coordinated shutdown, the exit code).
        List<String> victimLog = java.nio.file.Files.readAllLines(temp.resolve("logs").resolve(victim + ".log"));
        victimLog.stream().filter(line -> line.contains("stopped (") || line.contains("Aeron") && line.contains("Exception"))
                .forEach(line -> System.out.println("[pause] " + victim + ": " + line));
        assertTrue(ProcessHandle.of(victimPid).isEmpty() || !ProcessHandle.of(victimPid).get().isAlive(), "the frozen JVM is gone");
        await(() -> status().workers() == 3, "the restarted " + victim + " joined", Duration.ofSeconds(60));
        long rejoined = System.nanoTime();
        assertEquals(survivors, stageWorkers(), "a restarted worker joins as a standby; the serving pipeline is left alone");
        System.out.printf("[pause] paused %s (stage 1 of 3) for %d ms: detected after %d ms, serving again after %d ms,"
                        + " all %d requests done after %d ms; resumed: exited (code %d) after %d ms, restarted and joined"
                        + " %d ms after it exited%n", victim, millis(paused, resumed), millis(paused, detected),
                millis(paused, servingAgain), REQUESTS, millis(paused, allDone), NodeExit.REMOVED_FROM_CLUSTER,
                millis(resumed, exited), millis(exited, rejoined));
    }

    /** The worker restarted after the pause is a real standby: it takes the stage of a worker killed under load. */
    @Test
    @Order(2)
    @Timeout(90)
    void shouldPlaceTheRestartedWorkerWhenAStageWorkerIsKilledAndRestartTheKilledOne() throws Exception {
        List<String> survivors = stageWorkers();
        String victim = standby(survivors);
        String killedWorker = survivors.get(1);
        List<FailoverLoad.Job> more = load.send(cluster);
        await(() -> more.stream().allMatch(j -> j.tokens() >= 3), "every request has its first tokens", Duration.ofSeconds(60));
        long killed = System.nanoTime();
        cluster.killWorker(killedWorker);
        await(() -> !status().serving(), "the coordinator noticed " + killedWorker + " is gone", Duration.ofSeconds(30));
        await(() -> status().serving(), "the pipeline serves again", Duration.ofSeconds(60));
        long killServing = System.nanoTime();
        load.assertExact(more);
        assertEquals(List.of(survivors.get(0), victim), stageWorkers(), "the restarted worker took the killed one's stage");
        await(() -> status().workers() == 3, "the killed " + killedWorker + " restarted and joined", Duration.ofSeconds(60));
        long killRejoined = System.nanoTime();
        assertEquals(List.of(KILLED), cluster.workerExitCodes(killedWorker), killedWorker + "'s exit code");
        System.out.printf("[pause] killed %s (stage 1 of 2): serving again after %d ms over the restarted %s, %s restarted"
                + " and joined after %d ms%n", killedWorker, millis(killed, killServing), victim, killedWorker, millis(killed, killRejoined));
    }

    /**
     * Rolling restart: SIGTERM on the last stage's worker under load. It asks the coordinator to move its stage before
     * it leaves (StageDrain), so the pipeline is rebuilt over the standby while the stopping worker is still an Up
     * member (no detection involved), every request completes exactly, and the worker exits and is started again.
     */
    @Test
    @Order(3)
    @Timeout(90)
    void shouldDrainAWorkerStoppedWithSigtermOntoTheStandbyWithoutAFailedRequest() throws Exception {
        List<String> before = stageWorkers();
        String standby = standby(before);
        String stopping = before.get(1);
        Cluster pekko = Cluster.get(cluster.node().system());
        List<FailoverLoad.Job> jobs = load.send(cluster);
        await(() -> jobs.stream().allMatch(j -> j.tokens() >= 3), "every request has its first tokens", Duration.ofSeconds(60));
        CompletableFuture<Long> exitedAt = cluster.workerProcess(stopping).onExit().thenApply(p -> System.nanoTime());
        long stopped = System.nanoTime();
        cluster.stopWorker(stopping);
        await(() -> !status().serving(), "the coordinator took " + stopping + " out", Duration.ofSeconds(30));
        long drained = System.nanoTime();
        List<String> workerMembers = workerMembers(pekko);
        await(() -> status().serving(), "the pipeline serves again", Duration.ofSeconds(60));
        long servingAgain = System.nanoTime();
        load.assertExact(jobs);
        long allDone = System.nanoTime();
        assertEquals(3, workerMembers.size(), "the pipeline was rebuilt while " + stopping + " was still a member: " + workerMembers);
        // The standby restarted by the previous case may still be Joining on a loaded host; what must not be seen yet is
        // a member leaving, exiting, downed or unreachable.
        assertTrue(workerMembers.stream().noneMatch(m -> m.contains("unreachable") || m.endsWith("Leaving")
                || m.endsWith("Exiting") || m.endsWith("Down")), "the pipeline was rebuilt before " + stopping
                + " began to leave (drained, not detected): " + workerMembers);
        assertEquals(List.of(before.get(0), standby), stageWorkers(), "the standby took the stopping worker's stage");
        long exited = exitedAt.get(30, TimeUnit.SECONDS);
        await(() -> cluster.workerExitCodes(stopping).size() == 2, "LocalCluster saw " + stopping + " exit", Duration.ofSeconds(10));
        assertEquals(SIGTERMED, cluster.workerExitCodes(stopping).getLast(), stopping + " exited on SIGTERM, not downed");
        await(() -> status().workers() == 3, "the stopped " + stopping + " restarted and joined", Duration.ofSeconds(60));
        long rejoined = System.nanoTime();
        System.out.printf("[drain] SIGTERM to %s (stage 1 of 2) with every request running: taken out after %d ms, serving"
                        + " again after %d ms, all %d requests done after %d ms, exited after %d ms, restarted and joined after"
                        + " %d ms%n", stopping, millis(stopped, drained), millis(stopped, servingAgain), REQUESTS,
                millis(stopped, allDone), millis(stopped, exited), millis(stopped, rejoined));
    }

    /** The one worker of three that holds no stage. */
    private static String standby(List<String> stageWorkers) {
        return java.util.stream.Stream.of("worker-1", "worker-2", "worker-3").filter(w -> !stageWorkers.contains(w))
                .findFirst().orElseThrow();
    }

    /** Every worker member as "address status", unreachable ones marked. */
    private static List<String> workerMembers(Cluster pekko) {
        return java.util.stream.StreamSupport.stream(pekko.state().getMembers().spliterator(), false)
                .filter(m -> m.hasRole(io.bitrelay.actors.worker.StageWorker.ROLE))
                .map(m -> m.address() + (pekko.state().getUnreachable().contains(m) ? " unreachable " : " ") + m.status())
                .toList();
    }

    private static List<String> stageWorkers() {
        return ClusterFixture.stageWorkers(cluster);
    }

    private static Coordinator.Status status() {
        return ClusterFixture.status(cluster);
    }
}
