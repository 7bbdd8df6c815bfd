package io.bitrelay.tests;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static io.bitrelay.tests.FailoverLoad.await;
import static io.bitrelay.tests.FailoverLoad.millis;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A coordinator + gateway node that stops (SIGTERM, a rolling restart) while both gateways stream: two such nodes, the
 * first (a JVM of its own) holding the coordinator singleton, three worker JVMs. Its own gateway's streaming clients must
 * each get either their whole answer or an error event saying why, and [DONE]: never a stream that just ends. The
 * other gateway's requests (this JVM's) must all complete exactly on the coordinator the singleton is handed over to.
 */
class CoordinatorStopTest {
    /** Short, so that the stopping gateway's long streams are still open when it ends them. */
    private static final String END_REQUESTS_AFTER = "1s";

    @TempDir
    static Path temp;
    static FailoverLoad survivingLoad;
    static FailoverLoad stoppingLoad;
    static OptTokenizer tokenizer;
    static LocalCluster cluster;

    @BeforeAll
    static void startClusterWithTwoCoordinatorNodes() throws Exception {
        Path checkpoint = ClusterFixture.writeModel(temp.resolve("model"));
        tokenizer = OptTokenizer.load(checkpoint);
        survivingLoad = new FailoverLoad(checkpoint, tokenizer, 16, 8, 0, 32);
        stoppingLoad = new FailoverLoad(checkpoint, tokenizer, 8, 8, 0, 96);
        cluster = ClusterFixture.startWithLeadCoordinator(checkpoint, "fp16", temp.resolve("logs"),
                ClusterFixture.with(ClusterFixture.THREE_STAGES, "bitrelay.gateway.end-requests-after", END_REQUESTS_AFTER));
    }

    @AfterAll
    static void stopCluster() {
        ClusterFixture.close(cluster, tokenizer);
    }

    @Test
    @Timeout(180)
    void shouldEndTheStoppingGatewaysStreamsWithAnErrorOrTheirAnswerAndFinishTheOtherGatewaysRequests() throws Exception {
        ClusterFixture.awaitThreeStages(cluster);
        Coordinator.Status before = ClusterFixture.status(cluster);
        assertEquals(cluster.leadCoordinatorAddress(), before.node(), "the coordinator runs in coordinator-1 before the stop");
        InetSocketAddress stoppingGateway = cluster.leadCoordinatorHttpAddress();
        List<FailoverLoad.Job> stopping = stoppingLoad.sendStreamedTo(stoppingGateway);
        List<FailoverLoad.Job> surviving = survivingLoad.send(cluster);
        await(() -> stopping.stream().allMatch(j -> j.tokens() >= 2) && surviving.stream().limit(8).allMatch(j -> j.tokens() >= 2),
                "every stream has its first tokens", Duration.ofSeconds(60));
        long stopped = System.nanoTime();
        cluster.stopCoordinator();
        int exit = cluster.awaitCoordinatorExit(Duration.ofSeconds(60));
        long exited = System.nanoTime();
        survivingLoad.assertExact(surviving);
        long finished = System.nanoTime();
        Coordinator.Status after = ClusterFixture.status(cluster);

        // what the stopping node did, for a failure below (its log goes with the test's temporary directory)
        try (var lines = java.nio.file.Files.lines(temp.resolve("logs").resolve("coordinator-1.log"))) {
            lines.filter(l -> l.contains("stopping") || l.contains("CoordinatedShutdown") || l.contains("ended with an error"))
                    .forEach(l -> System.out.println("[coordinator-1] " + l));
        }
        int ended = 0;
        for (int i = 0; i < stopping.size(); i++) {
            FailoverLoad.Job job = stopping.get(i);
            job.done.get(30, TimeUnit.SECONDS);
            assertTrue(job.sawDone, "stream " + i + " of the stopping gateway ended with [DONE], not cut (error: " + job.error + ")");
            String expected = stoppingLoad.referenceText(i);
            if (job.error == null) {
                assertEquals(expected, job.text.toString(), "stream " + i + " finished in time, with the reference's text");
            } else {
                assertTrue(job.error.contains("shutting down"), "stream " + i + " says why it ended: " + job.error);
                assertTrue(expected.startsWith(job.text.toString()), "stream " + i + " was exact up to its error");
                ended++;
            }
        }
        System.out.printf("[handover] SIGTERM of coordinator-1 (exit %d after %d ms): %d of its %d streams ended with an"
                        + " error event and [DONE], the others finished; the other gateway's %d requests exact after %d ms,"
                        + " %d resumed there%n", exit, millis(stopped, exited), ended, stopping.size(), surviving.size(),
                millis(stopped, finished), after.resumed());
        assertTrue(ended > 0, "a stream outlived " + END_REQUESTS_AFTER + " and was ended with an error (96 tokens each)");
        assertNotEquals(-1, exit, "coordinator-1 exited");
        assertEquals(cluster.node().seedAddress(), after.node(), "the singleton moved to this JVM's node");
        assertNotEquals(before.incarnation(), after.incarnation());
    }
}
