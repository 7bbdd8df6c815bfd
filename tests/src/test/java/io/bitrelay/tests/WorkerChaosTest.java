package io.bitrelay.tests;

import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static io.bitrelay.tests.FailoverLoad.await;
import static io.bitrelay.tests.FailoverLoad.millis;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The chaos proof of issue 15: three stage workers and a standby, one JVM each, under greedy load (a third streamed over
 * HTTP, a third non-streaming over HTTP, a third submitted to the gateway's backend). The worker of the first, then the
 * middle, then the last stage is killed with SIGKILL at a random point of its round (after a seeded random number of
 * tokens); LocalCluster restarts it and it joins as the standby for the next kill. Every request of every round must
 * complete without an error and with the single-process model's tokens; each kill must have hit the worker holding the
 * intended stage, the standby must have taken exactly that stage, and the coordinator must have replayed sequences.
 * Then two losses in a row, twice: the standby killed while it loads a lost stage (the two survivors take the model),
 * and, once both killed workers are back as standbys, a stage worker killed while the previous loss's sequences replay.
 *
 * <p>The seed is printed and named in every failure; {@code -Dbitrelay.chaos.seed=N} repeats a run's kill points. The
 * timeouts add up to 295 s, so that CI spends at most 5 minutes here (docs/failover.md has the times measured).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class WorkerChaosTest {
    /** 24 per round, 120 in all: enough to keep every stage busy, few enough to finish under load within the timeouts. */
    private static final int REQUESTS_PER_KILL = 24;
    private static final int MAX_TOKENS = 32;
    /** Kills happen once at least one token and at most this share of a round's tokens have arrived. */
    private static final double LATEST_KILL = 0.7;
    /** Process.exitValue of a JVM killed by SIGKILL: 128 + 9. */
    private static final int KILLED = 137;
    private static final List<String> WORKERS = List.of("worker-1", "worker-2", "worker-3", "worker-4");

    @TempDir
    static Path temp;
    static FailoverLoad load;
    static OptTokenizer tokenizer;
    static LocalCluster cluster;
    static long seed;
    static Random random;

    @BeforeAll
    @Timeout(95)
    static void startThreeStagesAndAStandby() throws Exception {
        seed = Long.getLong("bitrelay.chaos.seed", System.nanoTime());
        random = new Random(seed);
        System.out.println("[chaos] seed " + seed + " (repeat with -Dbitrelay.chaos.seed=" + seed + ")");
        Path checkpoint = ClusterFixture.writeModel(temp.resolve("model"));
        tokenizer = OptTokenizer.load(checkpoint);
        load = new FailoverLoad(checkpoint, tokenizer, REQUESTS_PER_KILL, REQUESTS_PER_KILL / 3, REQUESTS_PER_KILL / 3, MAX_TOKENS);
        cluster = ClusterFixture.start(checkpoint, "fp16", temp.resolve("logs"),
                Map.of("bitrelay.local-cluster.restart.min-backoff", "500ms"));
        String standby = cluster.addWorker(line -> System.out.println("[cluster] " + line));
        await(() -> ClusterFixture.status(cluster).workers() == 4, "the standby " + standby + " joined", Duration.ofSeconds(60));
    }

    @AfterAll
    static void stopCluster() {
        ClusterFixture.close(cluster, tokenizer);
    }

    @Test
    @Order(1)
    @Timeout(100)
    void shouldLoseNoRequestAndNoTokenWhenTheFirstMiddleAndLastStagesWorkersAreKilledAtRandomPoints() throws Exception {
        List<String> lines = new ArrayList<>();
        for (int position : new int[]{0, 1, 2}) {
            int killAfterTokens = randomKillPoint();
            lines.add(withSeed("stage " + position + " killed after " + killAfterTokens + " tokens",
                    () -> killUnderLoad(position, killAfterTokens)));
        }
        lines.forEach(line -> System.out.println("[chaos] " + line));
    }

    /**
     * A stage worker killed at a random point, then the standby that takes its stage killed while it loads: with no
     * standby left (the first victim is still restarting), the two survivors take the model over.
     */
    @Test
    @Order(2)
    @Timeout(45)
    void shouldLoseNoRequestWhenTheStandbyIsKilledWhileItLoadsTheLostStage() throws Exception {
        int position = random.nextInt(3);
        int killAfterTokens = randomKillPoint();
        String line = withSeed("stage " + position + " killed after " + killAfterTokens + " tokens, then its standby while loading", () -> {
            awaitFourWorkersServing();
            List<String> before = ClusterFixture.stageWorkers(cluster);
            String standby = standby(before);
            List<FailoverLoad.Job> jobs = load.send(cluster);
            await(() -> tokens(jobs) >= killAfterTokens, killAfterTokens + " tokens arrived", Duration.ofSeconds(60));
            long killed = System.nanoTime();
            cluster.killWorker(before.get(position));
            await(() -> ClusterFixture.stageWorkers(cluster).contains(standby), "the standby " + standby + " was given the lost stage",
                    Duration.ofSeconds(30));
            assertTrue(!ClusterFixture.status(cluster).serving(), "the standby was killed before the pipeline served again");
            cluster.killWorker(standby);
            await(() -> ClusterFixture.status(cluster).serving() && !ClusterFixture.stageWorkers(cluster).contains(standby),
                    "the pipeline serves again without " + standby, Duration.ofSeconds(60));
            long servingAgain = System.nanoTime();
            load.assertExact(jobs);
            List<String> survivors = new ArrayList<>(before);
            survivors.remove(position);
            assertEquals(survivors, ClusterFixture.stageWorkers(cluster), "the two survivors took the model over");
            return String.format("stage %d: killed %s, then the standby %s while it loaded: serving again over %s after %d ms,"
                    + " all %d requests exact", position, before.get(position), standby, survivors, millis(killed, servingAgain),
                    REQUESTS_PER_KILL);
        });
        System.out.println("[chaos] " + line);
    }

    /**
     * Once both killed workers are back as standbys, a stage worker of the two-stage pipeline killed at a random point:
     * the rebuild goes back to three stages (the survivor keeps its stage, the two standbys take the others). As soon
     * as that pipeline serves, while the sequences replay their prefix, one of its three workers is killed: with no
     * standby left, the two others take the model over and the sequences replay a second time.
     */
    @Test
    @Order(3)
    @Timeout(55)
    void shouldLoseNoRequestWhenAStageWorkerIsKilledWhileTheSequencesReplay() throws Exception {
        int killAfterTokens = randomKillPoint();
        int first = random.nextInt(2);
        int second = random.nextInt(3);
        String line = withSeed("stage " + first + " of 2 killed after " + killAfterTokens + " tokens, then stage " + second
                + " of 3 during the replay", () -> {
            awaitFourWorkersServing();
            List<String> before = ClusterFixture.stageWorkers(cluster);
            assertEquals(2, before.size(), "two stages since the survivors took the model: " + before);
            List<String> standbys = WORKERS.stream().filter(w -> !before.contains(w)).toList();
            String survivor = before.get(1 - first);
            List<FailoverLoad.Job> jobs = load.send(cluster);
            await(() -> tokens(jobs) >= killAfterTokens, killAfterTokens + " tokens arrived", Duration.ofSeconds(60));
            long firstKill = System.nanoTime();
            cluster.killWorker(before.get(first));
            await(() -> !ClusterFixture.status(cluster).serving(), "the first loss noticed", Duration.ofSeconds(30));
            await(() -> ClusterFixture.status(cluster).serving(), "serving after the first loss", Duration.ofSeconds(60));
            List<String> between = ClusterFixture.stageWorkers(cluster);
            long replayedBetween = ClusterFixture.status(cluster).replayed();
            String secondVictim = between.get(second);
            int tokensAtSecondKill = tokens(jobs);
            long killed = System.nanoTime();
            cluster.killWorker(secondVictim);
            await(() -> !ClusterFixture.status(cluster).serving(), "the second loss noticed", Duration.ofSeconds(30));
            await(() -> ClusterFixture.status(cluster).serving(), "serving after the second loss", Duration.ofSeconds(60));
            long servingAgain = System.nanoTime();
            load.assertExact(jobs);
            List<String> after = ClusterFixture.stageWorkers(cluster);

            assertEquals(3, between.size(), "back to three stages over the standbys: " + before + " -> " + between);
            assertEquals(survivor, between.get(1 - first), "the survivor kept its stage: " + before + " -> " + between);
            assertTrue(between.containsAll(standbys), "both standbys were placed: " + between);
            List<String> expectedAfter = new ArrayList<>(between);
            expectedAfter.remove(secondVictim);
            assertEquals(expectedAfter, after, "the two left took the model over, in their order");
            long replayed = ClusterFixture.status(cluster).replayed() - replayedBetween;
            assertTrue(replayed > 0, "the second kill hit sequences that were replaying (" + replayed + " replayed again)");
            return String.format("killed %s (stage %d of 2), then %s (stage %d of 3) %d ms later with %d tokens sent: serving"
                            + " again over %s after %d ms, %d sequence(s) replayed a second time, all %d requests exact",
                    before.get(first), first, secondVictim, second, millis(firstKill, killed), tokensAtSecondKill, after,
                    millis(killed, servingAgain), replayed, REQUESTS_PER_KILL);
        });
        System.out.println("[chaos] " + line);
    }

    /** At least one token of the round has arrived, at most {@link #LATEST_KILL} of them; seeded. */
    private static int randomKillPoint() {
        return 1 + random.nextInt((int) (REQUESTS_PER_KILL * MAX_TOKENS * LATEST_KILL));
    }

    /**
     * Runs one round; a failure names the seed and the round, so that the run can be repeated, and the host's load: a
     * starved host makes the failure detector drop workers nobody killed, and the stages then differ from the expected.
     */
    private static String withSeed(String round, java.util.concurrent.Callable<String> body) {
        try {
            return body.call();
        } catch (AssertionError | Exception e) {
            throw new AssertionError("seed " + seed + ", " + round + " (repeat with -Dbitrelay.chaos.seed=" + seed + "; "
                    + loadAverage() + "): " + e.getMessage(), e);
        }
    }

    private static String loadAverage() {
        try {
            return "load average " + Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (IOException | RuntimeException e) {
            return "load average unknown";
        }
    }

    private static void awaitFourWorkersServing() throws InterruptedException {
        await(() -> ClusterFixture.status(cluster).workers() == 4 && ClusterFixture.status(cluster).serving(),
                "four workers joined and the pipeline serves", Duration.ofSeconds(60));
    }

    /** The one worker of four that holds none of the three stages. */
    private static String standby(List<String> stageWorkers) {
        return WORKERS.stream().filter(w -> !stageWorkers.contains(w)).findFirst().orElseThrow();
    }

    /** One round: every request sent, the worker at {@code position} killed after {@code killAfterTokens}, all checked. */
    private String killUnderLoad(int position, int killAfterTokens) throws Exception {
        // Recovery from the previous round: the killed worker is back, as the standby.
        awaitFourWorkersServing();
        List<String> before = ClusterFixture.stageWorkers(cluster);
        assertEquals(3, before.size(), "three stages before the kill: " + before);
        String standby = standby(before);
        String victim = before.get(position);
        long replayedBefore = ClusterFixture.status(cluster).replayed();

        List<FailoverLoad.Job> jobs = load.send(cluster);
        await(() -> tokens(jobs) >= killAfterTokens, killAfterTokens + " tokens arrived", Duration.ofSeconds(60));
        assertEquals(victim, ClusterFixture.stageWorkers(cluster).get(position), "the stage's worker did not change before the kill");
        int tokensAtKill = tokens(jobs);
        long killed = System.nanoTime();
        cluster.killWorker(victim);
        await(() -> !ClusterFixture.status(cluster).serving(), "the coordinator noticed " + victim + " is gone", Duration.ofSeconds(30));
        long detected = System.nanoTime();
        await(() -> ClusterFixture.status(cluster).serving(), "the pipeline serves again", Duration.ofSeconds(60));
        long servingAgain = System.nanoTime();
        load.assertExact(jobs);
        long allDone = System.nanoTime();

        List<String> expected = new ArrayList<>(before);
        expected.set(position, standby);
        assertEquals(expected, ClusterFixture.stageWorkers(cluster), "the standby " + standby + " took stage " + position
                + " of the killed " + victim + ", the others kept theirs");
        assertEquals(KILLED, cluster.workerExitCodes(victim).getLast(), victim + " died of the SIGKILL");
        long replayed = ClusterFixture.status(cluster).replayed() - replayedBefore;
        assertTrue(replayed > 0, "the kill hit running sequences and the coordinator replayed them (" + replayed + ")");
        assertTrue(jobs.stream().anyMatch(j -> j.firstTokenAfter(servingAgain) != Long.MAX_VALUE),
                "tokens arrived after the rebuilt pipeline served");
        return String.format("stage %d: killed %s after %d of %d tokens; detected after %d ms, serving again over %s after"
                        + " %d ms, %d sequence(s) replayed, all %d requests exact after %d ms", position, victim, tokensAtKill,
                REQUESTS_PER_KILL * MAX_TOKENS, millis(killed, detected), standby, millis(killed, servingAgain), replayed,
                REQUESTS_PER_KILL, millis(killed, allDone));
    }

    private static int tokens(List<FailoverLoad.Job> jobs) {
        return jobs.stream().mapToInt(FailoverLoad.Job::tokens).sum();
    }
}
