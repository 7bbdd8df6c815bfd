package io.bitrelay.tests;

import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

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
 *
 * <p>The seed is printed and named in every failure; {@code -Dbitrelay.chaos.seed=N} repeats a run's kill points.
 */
class WorkerChaosTest {
    private static final int REQUESTS_PER_KILL = 36;
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

    @BeforeAll
    static void startThreeStagesAndAStandby() throws Exception {
        seed = Long.getLong("bitrelay.chaos.seed", System.nanoTime());
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
        if (cluster != null) {
            cluster.close();
        }
        if (tokenizer != null) {
            tokenizer.close();
        }
    }

    @Test
    @Timeout(240)
    void shouldLoseNoRequestAndNoTokenWhenTheFirstMiddleAndLastStagesWorkersAreKilledAtRandomPoints() throws Exception {
        Random random = new Random(seed);
        int tokensPerRound = REQUESTS_PER_KILL * MAX_TOKENS;
        List<String> lines = new ArrayList<>();
        for (int position : new int[]{0, 1, 2}) {
            int killAfterTokens = 1 + random.nextInt((int) (tokensPerRound * LATEST_KILL));
            String round = "seed " + seed + ", stage " + position + " killed after " + killAfterTokens + " tokens";
            try {
                lines.add(killUnderLoad(position, killAfterTokens));
            } catch (AssertionError | Exception e) {
                throw new AssertionError(round + " (repeat with -Dbitrelay.chaos.seed=" + seed + "): " + e.getMessage(), e);
            }
        }
        lines.forEach(line -> System.out.println("[chaos] " + line));
    }

    /** One round: every request sent, the worker at {@code position} killed after {@code killAfterTokens}, all checked. */
    private String killUnderLoad(int position, int killAfterTokens) throws Exception {
        // Recovery from the previous round: the killed worker is back, as the standby.
        await(() -> ClusterFixture.status(cluster).workers() == 4 && ClusterFixture.status(cluster).serving(),
                "four workers joined and the pipeline serves", Duration.ofSeconds(60));
        List<String> before = ClusterFixture.stageWorkers(cluster);
        assertEquals(3, before.size(), "three stages before the kill: " + before);
        String standby = WORKERS.stream().filter(w -> !before.contains(w)).findFirst().orElseThrow();
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
