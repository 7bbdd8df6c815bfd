package io.bitrelay.actors.serialization;

import io.bitrelay.actors.coordinator.FinishReason;

import com.typesafe.config.ConfigFactory;
import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.coordinator.JobEvent;
import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.gateway.TokenListener;
import io.bitrelay.actors.dataplane.Link;
import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.actors.worker.StageStats;
import io.bitrelay.actors.worker.StageWorker;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RangeEstimator;
import io.bitrelay.runtime.quant.RecipeOptions;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KryoSerializerTest {
    private static final ActorTestKit TESTKIT = ActorTestKit.create(ConfigFactory.parseString("""
            pekko.actor.allow-java-serialization = off
            pekko.actor.serializers.bitrelay-kryo = "io.bitrelay.actors.serialization.KryoSerializer"
            pekko.actor.serialization-bindings { "io.bitrelay.actors.serialization.ClusterMessage" = bitrelay-kryo }
            """));

    @AfterAll
    static void stop() {
        TESTKIT.shutdownTestKit();
    }

    private static Object roundTrip(Object message) {
        Serialization serialization = SerializationExtension.get(Adapter.toClassic(TESTKIT.system()));
        assertInstanceOf(KryoSerializer.class, serialization.findSerializerFor(message));
        byte[] bytes = serialization.serialize(message).get();
        return serialization.deserialize(bytes, message.getClass()).get();
    }

    @Test
    void shouldRoundTripEveryProtocolShapeIncludingActorRefs() {
        TestProbe<JobEvent> client = TESTKIT.createTestProbe();
        GenerationJob job = new GenerationJob("cmpl-1", new int[]{2, 5, 9}, 16, new SamplingParams(0.7f, 40, 0.9f, 11), true);
        Coordinator.Submit submit = (Coordinator.Submit) roundTrip(new Coordinator.Submit(job, client.getRef()));
        assertEquals(client.getRef(), submit.replyTo());
        assertArrayEquals(job.promptTokens(), submit.job().promptTokens());
        assertEquals(job.sampling(), submit.job().sampling());

        MicroBatch batch = new MicroBatch(7, 3, new MicroBatch.Entry[]{
                new MicroBatch.Entry(1, new int[]{4, 5}, 0, SamplingParams.greedy()),
                new MicroBatch.Entry(2, new int[]{6}, 9, null)}, true);
        StageWorker.RunStep run = (StageWorker.RunStep) roundTrip(new StageWorker.RunStep(batch));
        assertEquals(2, run.batch().entries().length);
        assertTrue(run.batch().calibration());
        assertArrayEquals(new int[]{4, 5}, run.batch().entries()[0].tokens());
        assertEquals(null, run.batch().entries()[1].firstChunkSampling());

        StageAssignment assignment = new StageAssignment(1, 3, 4, 8, 12, "/models/x", "int8",
                new Link(0, 1, "aeron:ipc", 1001), null,
                new io.bitrelay.actors.pipeline.StageQuantization("w8a8-smoothquant", new RecipeOptions(RangeEstimator.MIN_MAX, false, true),
                        0.5f, "abc", "/store/x.safetensors", 0xFFFFFFFFL));
        StageWorker.LoadStage load = (StageWorker.LoadStage) roundTrip(
                new StageWorker.LoadStage(assignment, TESTKIT.<StageWorker.Reply>createTestProbe().getRef(),
                        TESTKIT.<StageWorker.Command>createTestProbe().getRef(), 7));
        assertEquals(assignment, load.assignment());
        assertEquals(7, load.placement(), "the placement a load answer echoes");
        assertEquals(new StageWorker.StageReady(1, 2L, 3L, true, null, 4L, 7), roundTrip(new StageWorker.StageReady(1, 2L, 3L, true,
                null, 4L, 7)));
        assertEquals(new StageWorker.StageFailed(1, "out of memory", 7), roundTrip(new StageWorker.StageFailed(1, "out of memory", 7)));
        io.bitrelay.actors.pipeline.LinkKey key = io.bitrelay.actors.pipeline.LinkKey.random(io.bitrelay.runtime.wire.LinkProtection.ENCRYPTED);
        StageAssignment keyed = new StageAssignment(1, 3, 4, 8, 12, "/models/x", "int8", new Link(0, 1, "aeron:ipc", 1001),
                null, null, "fp32", 2048, key);
        StageWorker.LoadStage keyedLoad = (StageWorker.LoadStage) roundTrip(
                new StageWorker.LoadStage(keyed, TESTKIT.<StageWorker.Reply>createTestProbe().getRef(),
                        TESTKIT.<StageWorker.Command>createTestProbe().getRef(), 1));
        assertEquals(key, keyedLoad.assignment().linkKey(), "the link key crosses intact");
        assertTrue(!keyed.toString().contains(java.util.Arrays.toString(key.bytes())), "the key is never printed");
        MicroBatch.Entry resident = new MicroBatch.Entry(3, new int[]{8, 9}, 0, SamplingParams.greedy(), -1, null,
                new io.bitrelay.actors.pipeline.StopRule(16, 2, true, 2), 0, 18);
        StageWorker.RunStep joined = (StageWorker.RunStep) roundTrip(new StageWorker.RunStep(new MicroBatch(4, 0,
                new MicroBatch.Entry[]{resident}, false)));
        assertEquals(resident.stop(), joined.batch().entries()[0].stop());
        assertEquals(18, joined.batch().entries()[0].kvCapacity());
        StageWorker.StepSampled sampled = (StageWorker.StepSampled) roundTrip(new StageWorker.StepSampled(4, new int[]{3}, new int[]{77}));
        assertArrayEquals(new int[]{77}, sampled.tokens());
        assertArrayEquals(new int[]{3}, ((StageWorker.SequencesLeft) roundTrip(new StageWorker.SequencesLeft(4, new int[]{3}))).sequenceIds());
        // The plan names its recipe; the options travel beside it, so the worker builds asymmetric weights (issue 19).
        StageWorker.PlanBegin begin = (StageWorker.PlanBegin) roundTrip(new StageWorker.PlanBegin("w4a4-rptq-gptq",
                RecipeOptions.DEFAULT, 0.5f, "valid.txt", 4, 64));
        assertEquals(RecipeOptions.DEFAULT, begin.options());
        assertTrue(begin.quantRecipe().lowBit().asymmetricWeights(), begin.quantRecipe().toString());
        assertEquals(QuantRecipe.W4A4_RPTQ_GPTQ.withAsymmetricWeights(true), begin.quantRecipe());
        io.bitrelay.runtime.eval.TokenScore score = new io.bitrelay.runtime.eval.TokenScore(42, -1.25, new int[]{42, 7}, new double[]{-1.25, -2.5});
        StageWorker.StepCompleted scored = (StageWorker.StepCompleted) roundTrip(new StageWorker.StepCompleted(9, new int[]{1, 2},
                new int[]{-1, 42}, new io.bitrelay.runtime.eval.TokenScore[][]{{score, score}, null}));
        assertEquals(2, scored.scores()[0].length);
        assertEquals(-1.25, scored.scores()[0][1].logprob());
        assertArrayEquals(new double[]{-1.25, -2.5}, scored.scores()[0][0].topLogprobs());
        assertEquals(null, scored.scores()[1]);
        JobEvent.PromptScored prompt = (JobEvent.PromptScored) roundTrip(new JobEvent.PromptScored("cmpl-2",
                new io.bitrelay.runtime.eval.TokenScore[]{score}));
        assertEquals(42, prompt.scores()[0].token());
        assertEquals(score, ((JobEvent.TokenGenerated) roundTrip(new JobEvent.TokenGenerated("cmpl-3", 42, score))).score());
        assertEquals("int4", ((StageWorker.LoadStage) roundTrip(new StageWorker.LoadStage(new StageAssignment(0, 1, 0, 2, 2, "/m",
                "fp16", null, null, null, "int4"), TESTKIT.<StageWorker.Reply>createTestProbe().getRef(), null, 1))).assignment().kvCache());
        assertEquals(new JobEvent.JobFinished("cmpl-1", FinishReason.EOS),
                roundTrip(new JobEvent.JobFinished("cmpl-1", FinishReason.EOS)));
        // coordinator admission (issue 16): a refusal's kind, the queued verdict, a submission's own deadline
        assertEquals(new JobEvent.JobFailed("cmpl-4", "queue full", io.bitrelay.actors.coordinator.FailureKind.OVERLOADED),
                roundTrip(new JobEvent.JobFailed("cmpl-4", "queue full", io.bitrelay.actors.coordinator.FailureKind.OVERLOADED)));
        assertEquals(new JobEvent.JobQueued("cmpl-5"), roundTrip(new JobEvent.JobQueued("cmpl-5")));
        assertEquals(1500, ((Coordinator.Submit) roundTrip(new Coordinator.Submit(job, client.getRef(), 1500))).deadlineMillis());
        StageStats stats = new StageStats(0, "w", 0, 4, new StageStats.LinkCounters(0, 1, "int8", 3, 30, 100, 200, 390, 0),
                0, null, 2, 4096, 3, 1000, new long[]{5, 10, 600, 200, 30, 7});
        StageStats back = (StageStats) roundTrip(stats);
        assertEquals(stats.outbound(), back.outbound());
        assertEquals(stats.computeNanos(), back.computeNanos());
        assertArrayEquals(stats.phaseNanos(), back.phaseNanos());
        assertEquals(600, back.nanos(io.bitrelay.actors.worker.StepPhase.LAYERS));
        StageWorker.StepCompleted done = (StageWorker.StepCompleted) roundTrip(new StageWorker.StepCompleted(7, new int[]{1, 2}, new int[]{40, 41}));
        assertArrayEquals(new int[]{40, 41}, done.tokens());
    }

    @Test
    void shouldRefuseUnregisteredClasses() {
        record Stray(int x) implements ClusterMessage {
        }
        assertThrows(Exception.class, () -> roundTrip(new Stray(1)));
    }

    @Test
    void shouldRegisterEachClassOnce() {
        Class<?>[] classes = ProtocolRegistry.classes();
        assertEquals(classes.length, Arrays.stream(classes).distinct().count());
    }
}
