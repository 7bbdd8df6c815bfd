package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.FinishReason;

import io.bitrelay.actors.coordinator.GenerationJob;

import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.generate.Generator;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.model.opt.OptModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class LocalGenerationBackendTest {
    @TempDir
    static Path temp;
    static OptModel model;

    @BeforeAll
    static void loadModel() {
        model = OptModel.load(TestModels.writeTiny(temp.resolve("tiny")));
    }

    @AfterAll
    static void closeModel() {
        model.close();
    }

    private static int[] prompt(int length, long seed) {
        int[] tokens = new SplittableRandom(seed).ints(length, 4, 300).toArray();
        tokens[0] = 2; // OPT's BOS
        return tokens;
    }

    /** What Generator makes alone: the tokens a listener should see (EOS is not one of them) and how it ends. */
    private static Object[] solo(int[] prompt, int maxNewTokens, SamplingParams sampling) {
        Generator.Result result = new Generator(model).generate(prompt, maxNewTokens, sampling, token -> true);
        int[] tokens = result.tokens();
        if (result.stopReason() == Generator.StopReason.EOS) {
            return new Object[]{Arrays.copyOf(tokens, tokens.length - 1), FinishReason.EOS};
        }
        return new Object[]{tokens, FinishReason.MAX_TOKENS};
    }

    @Test
    void shouldGenerateWhatTheGeneratorGeneratesAlone() throws Exception {
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, LocalBackendSettings.defaults())) {
            for (SamplingParams sampling : List.of(SamplingParams.greedy(), new SamplingParams(0.8f, 40, 0.95f, 7))) {
                int[] prompt = prompt(9, 1);
                RecordingListener listener = new RecordingListener();
                backend.submit(new GenerationJob("job-" + sampling.seed(), prompt, 30, sampling, true), listener);
                Object end = listener.awaitEnd();
                Object[] expected = solo(prompt, 30, sampling);
                assertArrayEquals((int[]) expected[0], listener.tokenArray(), "sampling " + sampling);
                assertEquals(expected[1], end);
                assertFalse(listener.calledAfterEnd);
            }
        }
    }

    @Test
    void shouldGiveEveryJobOfABatchTheTokensItGetsAlone() throws Exception {
        int jobs = 6;
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, new LocalBackendSettings(4, 16))) {
            List<RecordingListener> listeners = new ArrayList<>();
            for (int i = 0; i < jobs; i++) {
                RecordingListener listener = new RecordingListener();
                listeners.add(listener);
                backend.submit(new GenerationJob("job-" + i, prompt(3 + 7 * i, 10 + i), 10 + 5 * i,
                        SamplingParams.greedy(), true), listener);
            }
            for (int i = 0; i < jobs; i++) {
                Object end = listeners.get(i).awaitEnd();
                Object[] expected = solo(prompt(3 + 7 * i, 10 + i), 10 + 5 * i, SamplingParams.greedy());
                assertArrayEquals((int[]) expected[0], listeners.get(i).tokenArray(), "job " + i);
                assertEquals(expected[1], end, "job " + i);
            }
            assertEquals(0, backend.queueDepth());
        }
    }

    @Test
    void shouldCancelRunningAndWaitingJobs() throws Exception {
        CountDownLatch firstTokenSeen = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        // The running job's listener holds the scheduler on its first token, so the second job is surely waiting.
        RecordingListener running = new RecordingListener() {
            @Override
            public void onToken(int tokenId) {
                super.onToken(tokenId);
                firstTokenSeen.countDown();
                await(release);
            }
        };
        RecordingListener waiting = new RecordingListener();
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, new LocalBackendSettings(1, 4))) {
            backend.submit(new GenerationJob("running", prompt(5, 3), 100, SamplingParams.greedy(), false), running);
            assertTrue(firstTokenSeen.await(20, TimeUnit.SECONDS));
            backend.submit(new GenerationJob("waiting", prompt(5, 4), 100, SamplingParams.greedy(), false), waiting);
            assertEquals(1, backend.queueDepth());
            backend.cancel("waiting");
            backend.cancel("running");
            backend.cancel("never-submitted");
            release.countDown();
            assertEquals(FinishReason.CANCELLED, running.awaitEnd());
            assertEquals(FinishReason.CANCELLED, waiting.awaitEnd());
            assertTrue(running.tokens.size() < 100);
            assertEquals(List.of(), waiting.tokens);
            assertEquals(0, backend.queueDepth());
            assertTrue(backend.ready(), "cancelling must leave the backend serving");
        }
    }

    @Test
    void shouldRefuseJobsBeyondTheWaitingLimitWithoutCallingTheirListener() throws Exception {
        CountDownLatch busy = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        RecordingListener blocker = new RecordingListener() {
            @Override
            public void onToken(int tokenId) {
                super.onToken(tokenId);
                busy.countDown();
                await(release);
            }
        };
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, new LocalBackendSettings(1, 2))) {
            backend.submit(new GenerationJob("blocker", prompt(4, 5), 2, SamplingParams.greedy(), false), blocker);
            assertTrue(busy.await(20, TimeUnit.SECONDS));
            RecordingListener first = new RecordingListener();
            RecordingListener second = new RecordingListener();
            backend.submit(new GenerationJob("a", prompt(4, 6), 2, SamplingParams.greedy(), false), first);
            backend.submit(new GenerationJob("b", prompt(4, 7), 2, SamplingParams.greedy(), false), second);
            RecordingListener refused = new RecordingListener();
            RejectedExecutionException e = assertThrows(RejectedExecutionException.class, () -> backend.submit(
                    new GenerationJob("c", prompt(4, 8), 2, SamplingParams.greedy(), false), refused));
            assertTrue(e.getMessage().contains("max-waiting-jobs"), e.getMessage());
            release.countDown();
            assertEquals(FinishReason.MAX_TOKENS, first.awaitEnd());
            assertEquals(FinishReason.MAX_TOKENS, second.awaitEnd());
            assertFalse(refused.end.isDone());
        }
    }

    @Test
    void shouldRejectJobsTheModelCannotRun() {
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, LocalBackendSettings.defaults())) {
            RecordingListener listener = new RecordingListener();
            IllegalArgumentException overflow = assertThrows(IllegalArgumentException.class, () -> backend.submit(
                    new GenerationJob("long", prompt(150, 1), 20, SamplingParams.greedy(), true), listener));
            assertTrue(overflow.getMessage().contains("160"), overflow.getMessage());
            assertThrows(IllegalArgumentException.class, () -> backend.submit(
                    new GenerationJob("vocab", new int[]{2, 300}, 2, SamplingParams.greedy(), true), listener));
            assertThrows(IllegalArgumentException.class, () -> backend.submit(
                    new GenerationJob("empty", new int[0], 2, SamplingParams.greedy(), true), listener));
            assertFalse(listener.end.isDone());
        }
    }

    @Test
    void shouldFailWaitingJobsWhenClosed() throws Exception {
        CountDownLatch busy = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        RecordingListener blocker = new RecordingListener() {
            @Override
            public void onToken(int tokenId) {
                super.onToken(tokenId);
                busy.countDown();
                await(release);
            }
        };
        RecordingListener waiting = new RecordingListener();
        LocalGenerationBackend backend = LocalGenerationBackend.start(model, new LocalBackendSettings(1, 4));
        backend.submit(new GenerationJob("blocker", prompt(4, 5), 50, SamplingParams.greedy(), false), blocker);
        assertTrue(busy.await(20, TimeUnit.SECONDS));
        backend.submit(new GenerationJob("waiting", prompt(4, 6), 5, SamplingParams.greedy(), false), waiting);
        Thread closer = Thread.ofPlatform().start(backend::close);
        release.countDown();
        closer.join(20_000);
        assertTrue(String.valueOf(blocker.awaitEnd()).startsWith("failed"));
        assertTrue(String.valueOf(waiting.awaitEnd()).startsWith("failed"));
        assertFalse(backend.ready());
        assertThrows(RejectedExecutionException.class, () -> backend.submit(
                new GenerationJob("late", prompt(4, 7), 2, SamplingParams.greedy(), false), new RecordingListener()));
    }

    private static void await(CountDownLatch latch) {
        try {
            if (!latch.await(20, TimeUnit.SECONDS)) {
                throw new IllegalStateException("test latch never released");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** What a scoring job hands its listener: the chunks of prompt scores, and how it ended. */
    private static final class ScoreRecorder extends RecordingListener {
        final List<io.bitrelay.runtime.eval.TokenScore> scores = new java.util.concurrent.CopyOnWriteArrayList<>();

        @Override
        public void onPromptScores(List<io.bitrelay.runtime.eval.TokenScore> chunk) {
            scores.addAll(chunk);
        }
    }

    @Test
    void shouldScoreAPromptWithPerplexitysNegativeLogLikelihood() throws Exception {
        int[] prompt = prompt(48, 5);
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, LocalBackendSettings.defaults())) {
            ScoreRecorder listener = new ScoreRecorder();
            backend.submit(GenerationJob.scoring("score-1", prompt, 3), listener);
            assertEquals(FinishReason.MAX_TOKENS, listener.awaitEnd());
            assertEquals(prompt.length - 1, listener.scores.size());
            double nll = 0;
            for (int t = 0; t < listener.scores.size(); t++) {
                io.bitrelay.runtime.eval.TokenScore score = listener.scores.get(t);
                assertEquals(prompt[t + 1], score.token(), "score " + t + " predicts prompt token " + (t + 1));
                assertEquals(3, score.topTokens().length);
                assertTrue(score.topLogprobs()[0] >= score.topLogprobs()[1] && score.topLogprobs()[0] >= score.logprob());
                nll -= score.logprob();
            }
            double expected = io.bitrelay.runtime.eval.Perplexity.windowNll(model, prompt);
            assertEquals(expected, nll, 1e-7 * expected, "the same helper, up to JIT-tier ulps of the forward pass");
            assertTrue(listener.tokens.isEmpty(), "a scoring job generates nothing");
        }
    }
}
