package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.coordinator.FinishReason;
import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.coordinator.JobEvent;
import io.bitrelay.runtime.generate.SamplingParams;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A stopping gateway ends the requests still open after its grace with an error their clients see (and cancels them at
 * the coordinator), refuses new ones, and lets those that finish in time finish.
 */
class GatewayStopTest {
    private static final ActorTestKit KIT = ActorTestKit.create();

    @AfterAll
    static void stop() {
        KIT.shutdownTestKit();
    }

    /** Records how a job ended: its finish reason, or "unavailable: …". */
    private static final class Ending extends RecordingListener {
        final CompletableFuture<String> unavailable = new CompletableFuture<>();

        @Override
        public void onUnavailable(String reason) {
            unavailable.complete(reason);
            onFailed(reason);
        }
    }

    private static GenerationJob job(String id) {
        return new GenerationJob(id, new int[]{2, 5, 6}, 8, SamplingParams.greedy(), false);
    }

    private static <T extends Coordinator.Command> T next(TestProbe<Coordinator.Command> coordinator, Class<T> type) {
        Coordinator.Command found = coordinator.fishForMessage(Duration.ofSeconds(5), m -> type.isInstance(m)
                ? FishingOutcomes.complete() : FishingOutcomes.continueAndIgnore()).getLast();
        return type.cast(found);
    }

    @Test
    void shouldEndTheRequestsStillOpenAfterTheGraceWithAnErrorAndRefuseNewOnes() throws Exception {
        TestProbe<Coordinator.Command> coordinator = KIT.createTestProbe();
        ActorRef<GatewayActor.Command> gateway = KIT.spawn(GatewayActor.create(coordinator.ref(), s -> { }, s -> { }));
        Ending quick = new Ending();
        Ending slow = new Ending();
        gateway.tell(new GatewayActor.SubmitJob(job("quick"), quick, 0));
        gateway.tell(new GatewayActor.SubmitJob(job("slow"), slow, 0));
        ActorRef<JobEvent> events = next(coordinator, Coordinator.Submit.class).replyTo();
        TestProbe<GatewayActor.JobsEnded> ended = KIT.createTestProbe();
        gateway.tell(new GatewayActor.EndJobs(Duration.ofMillis(500), ended.ref()));

        Ending late = new Ending();
        gateway.tell(new GatewayActor.SubmitJob(job("late"), late, 0));
        assertTrue(late.unavailable.get(5, TimeUnit.SECONDS).contains("shutting down"), "a new request is refused");
        events.tell(new JobEvent.TokenGenerated("quick", 9));
        events.tell(new JobEvent.JobFinished("quick", FinishReason.MAX_TOKENS));
        assertEquals(FinishReason.MAX_TOKENS, quick.awaitEnd(), "a request that finishes within the grace finishes");
        ended.expectNoMessage(Duration.ofMillis(200)); // "slow" is still open

        assertEquals(new GatewayActor.JobsEnded(1), ended.receiveMessage(Duration.ofSeconds(5)));
        assertTrue(slow.unavailable.get(5, TimeUnit.SECONDS).contains("shutting down"), "its client sees why");
        assertEquals("slow", next(coordinator, Coordinator.Cancel.class).requestId(), "and the coordinator frees it");

        TestProbe<GatewayActor.JobsEnded> again = KIT.createTestProbe();
        gateway.tell(new GatewayActor.EndJobs(Duration.ofMillis(500), again.ref()));
        assertEquals(new GatewayActor.JobsEnded(1), again.receiveMessage(Duration.ofSeconds(1)), "nothing open: answered at once");
    }
}
