package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.coordinator.FinishReason;
import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.coordinator.JobEvent;
import io.bitrelay.runtime.generate.SamplingParams;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The gateway's side of a coordinator hand-over: a status from a coordinator of a new incarnation makes the gateway
 * send every job still in flight to it, with the tokens its client received, and nothing else.
 */
class GatewayHandOverTest {
    private static final ActorTestKit KIT = ActorTestKit.create();

    @AfterAll
    static void stop() {
        KIT.shutdownTestKit();
    }

    private static GenerationJob job(String id, int maxTokens) {
        return new GenerationJob(id, new int[]{2, 5, 6}, maxTokens, SamplingParams.greedy(), false);
    }

    private static Coordinator.Status status(String incarnation) {
        return new Coordinator.Status(Coordinator.Phase.SERVING, 3, new Coordinator.StageView[0], new String[0], 0, 0, 0,
                null, "fp32", new Coordinator.Phase[]{Coordinator.Phase.SERVING}, 0, incarnation, 0, "127.0.0.1:1");
    }

    /** Answers the gateway's next status poll with {@code status}, skipping its stats requests. */
    private static void answerPoll(TestProbe<Coordinator.Command> coordinator, Coordinator.Status status) {
        Coordinator.Command next = coordinator.fishForMessage(Duration.ofSeconds(5), m -> m instanceof Coordinator.GetStatus
                ? org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes.complete()
                : org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore()).getLast();
        ((Coordinator.GetStatus) next).replyTo().tell(status);
    }

    private static <T extends Coordinator.Command> T next(TestProbe<Coordinator.Command> coordinator, Class<T> type) {
        Coordinator.Command found = coordinator.fishForMessage(Duration.ofSeconds(5), m -> type.isInstance(m)
                ? org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes.complete()
                : org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore()).getLast();
        return type.cast(found);
    }

    @Test
    void shouldResumeEveryJobInFlightFromItsTokensSoFarWhenANewCoordinatorAnswers() throws Exception {
        TestProbe<Coordinator.Command> coordinator = KIT.createTestProbe();
        ActorRef<GatewayActor.Command> gateway = KIT.spawn(GatewayActor.create(coordinator.ref(), s -> { }, s -> { }));
        answerPoll(coordinator, status("first"));
        RecordingListener running = new RecordingListener();
        RecordingListener done = new RecordingListener();
        RecordingListener cancelled = new RecordingListener();
        AtomicInteger queued = new AtomicInteger();
        RecordingListener counted = new RecordingListener() {
            @Override
            public void onQueued() {
                queued.incrementAndGet();
            }
        };
        gateway.tell(new GatewayActor.SubmitJob(job("running", 8), running, 0));
        gateway.tell(new GatewayActor.SubmitJob(job("done", 2), done, 0));
        gateway.tell(new GatewayActor.SubmitJob(job("cancelled", 8), cancelled, 0));
        gateway.tell(new GatewayActor.SubmitJob(job("queued", 8), counted, 60_000));
        ActorRef<JobEvent> events = next(coordinator, Coordinator.Submit.class).replyTo();
        events.tell(new JobEvent.JobQueued("queued"));
        events.tell(new JobEvent.TokenGenerated("running", 10));
        events.tell(new JobEvent.TokenGenerated("running", 11));
        events.tell(new JobEvent.TokenGenerated("done", 20));
        events.tell(new JobEvent.TokenGenerated("done", 21));
        events.tell(new JobEvent.JobFinished("done", FinishReason.MAX_TOKENS));
        gateway.tell(new GatewayActor.CancelJob("cancelled"));
        next(coordinator, Coordinator.Cancel.class);
        answerPoll(coordinator, status("first")); // the same coordinator: nothing to resume

        answerPoll(coordinator, status("second"));
        Coordinator.Resume first = next(coordinator, Coordinator.Resume.class);
        Coordinator.Resume second = next(coordinator, Coordinator.Resume.class);
        assertEquals("running", first.job().requestId(), "in submission order; the finished job is not resumed");
        assertArrayEquals(new int[]{10, 11}, first.tokensSoFar(), "what its client received");
        assertEquals(0, first.deadlineMillis(), "no deadline of its client's own: request-deadline on the new one");
        assertEquals("queued", second.job().requestId());
        assertArrayEquals(new int[0], second.tokensSoFar());
        assertTrue(second.deadlineMillis() > 0 && second.deadlineMillis() <= 60_000, "what is left of its client's deadline");
        assertEquals(FinishReason.CANCELLED, cancelled.awaitEnd(), "a job cancelled meanwhile ends here, not resumed");

        first.replyTo().tell(new JobEvent.JobQueued("queued"));
        first.replyTo().tell(new JobEvent.TokenGenerated("running", 12));
        first.replyTo().tell(new JobEvent.JobFinished("running", FinishReason.MAX_TOKENS));
        assertEquals(FinishReason.MAX_TOKENS, running.awaitEnd());
        assertEquals(java.util.List.of(10, 11, 12), running.tokens, "no token twice, none lost");
        assertEquals(1, queued.get(), "the new coordinator's JobQueued is not passed on a second time");
    }
}
