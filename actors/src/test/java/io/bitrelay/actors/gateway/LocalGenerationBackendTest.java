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
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, new LocalBackendSettings(4, 16, 2048))) {
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
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, new LocalBackendSettings(1, 4, 2048))) {
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
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, new LocalBackendSettings(1, 2, 2048))) {
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
        LocalGenerationBackend backend = LocalGenerationBackend.start(model, new LocalBackendSettings(1, 4, 2048));
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
        final List<Integer> chunkSizes = new java.util.concurrent.CopyOnWriteArrayList<>();

        @Override
        public void onPromptScores(List<io.bitrelay.runtime.eval.TokenScore> chunk) {
            scores.addAll(chunk);
            chunkSizes.add(chunk.size());
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

    /** Every token {@code maxNewTokens} steps sample, EOS fed back in like any other: what a job sees before its rule. */
    private static int[] sampledIgnoringEos(int[] prompt, int maxNewTokens, SamplingParams sampling) {
        io.bitrelay.runtime.generate.Sampler sampler = new io.bitrelay.runtime.generate.Sampler(sampling);
        int[] tokens = new int[maxNewTokens];
        try (io.bitrelay.runtime.model.opt.KvCache cache = model.newCache()) {
            int[] input = prompt;
            for (int n = 0; n < maxNewTokens; n++) {
                tokens[n] = sampler.next(model.forward(List.of(new io.bitrelay.runtime.model.opt.SequenceChunk(input, cache)), false)[0]);
                input = new int[]{tokens[n]};
            }
        }
        return tokens;
    }

    /** vLLM's rule, written out: an EOS past the first minTokens ends the job (and is not passed on). */
    private static Object[] expectedEnd(int[] sampled, boolean stopOnEos, int minTokens) {
        int eos = model.config().eosTokenId();
        for (int n = 1; n <= sampled.length; n++) {
            if (stopOnEos && sampled[n - 1] == eos && n > minTokens) {
                return new Object[]{Arrays.copyOf(sampled, n - 1), FinishReason.EOS};
            }
        }
        return new Object[]{sampled, FinishReason.MAX_TOKENS};
    }

    /** A token listener that also keeps the scores of its sampled tokens. */
    private static final class TokenScoreRecorder extends RecordingListener {
        final List<io.bitrelay.runtime.eval.TokenScore> scores = new java.util.concurrent.CopyOnWriteArrayList<>();

        @Override
        public void onTokenScore(io.bitrelay.runtime.eval.TokenScore score) {
            scores.add(score);
        }
    }

    @Test
    void shouldPassEarlyEosOnUnderMinTokensAndIgnoreEosAsTheSharedStopRuleSays() throws Exception {
        int eos = model.config().eosTokenId();
        int maxNewTokens = 40;
        int[] prompt = null;
        SamplingParams sampling = null;
        int[] sampled = null;
        int firstEos = -1;
        for (int seed = 0; seed < 500 && firstEos < 0; seed++) {
            prompt = prompt(6, 100 + seed);
            sampling = new SamplingParams(3f, 0, 1f, seed);
            sampled = sampledIgnoringEos(prompt, maxNewTokens, sampling);
            for (int n = 0; n < maxNewTokens - 5 && firstEos < 0; n++) {
                firstEos = sampled[n] == eos ? n + 1 : -1;
            }
        }
        assertTrue(firstEos > 0, "some seed samples EOS early on the tiny model");
        record Variant(String name, boolean stopOnEos, int minTokens, int logprobs) {
        }
        List<Variant> variants = List.of(new Variant("stop", true, 0, -1), new Variant("min-tokens", true, firstEos, 2),
                new Variant("ignore-eos", false, 0, -1), new Variant("min-tokens-all", true, maxNewTokens, -1));
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, LocalBackendSettings.defaults())) {
            List<TokenScoreRecorder> listeners = new ArrayList<>();
            for (Variant v : variants) {
                TokenScoreRecorder listener = new TokenScoreRecorder();
                listeners.add(listener);
                backend.submit(new GenerationJob(v.name(), prompt, maxNewTokens, sampling, v.stopOnEos(), false,
                        v.logprobs(), v.minTokens()), listener);
            }
            for (int i = 0; i < variants.size(); i++) {
                Variant v = variants.get(i);
                TokenScoreRecorder listener = listeners.get(i);
                Object end = listener.awaitEnd();
                Object[] expected = expectedEnd(sampled, v.stopOnEos(), v.minTokens());
                assertArrayEquals((int[]) expected[0], listener.tokenArray(), v.name());
                assertEquals(expected[1], end, v.name());
                assertFalse(listener.calledAfterEnd, v.name());
                if (v.logprobs() >= 0) {
                    assertEquals(listener.tokens.size(), listener.scores.size(), "one score per token passed on");
                    for (int t = 0; t < listener.scores.size(); t++) {
                        assertEquals(listener.tokens.get(t), listener.scores.get(t).token());
                        assertEquals(2, listener.scores.get(t).topTokens().length);
                    }
                } else {
                    assertTrue(listener.scores.isEmpty());
                }
            }
            assertTrue(listeners.get(1).tokens.contains(eos), "an EOS within min_tokens is an ordinary token");
            assertEquals(FinishReason.EOS, listeners.get(0).awaitEnd());
            assertEquals(FinishReason.MAX_TOKENS, listeners.get(2).awaitEnd());
        }
    }

    @Test
    void shouldScoreAPromptInChunksExactlyAsPromptScoringScoresItWholeBesideAGeneratingJob() throws Exception {
        int[] prompt = prompt(48, 5);
        int[] generatingPrompt = prompt(9, 1);
        // 20 tokens a step: the scored prompt goes in chunks beside the generating job's rows
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, new LocalBackendSettings(4, 16, 20))) {
            RecordingListener generating = new RecordingListener();
            backend.submit(new GenerationJob("gen", generatingPrompt, 12, SamplingParams.greedy(), true), generating);
            ScoreRecorder scoring = new ScoreRecorder();
            backend.submit(GenerationJob.scoring("score", prompt, 3), scoring);
            assertEquals(FinishReason.MAX_TOKENS, scoring.awaitEnd());
            assertTrue(scoring.chunkSizes.size() >= 3, "chunks of at most 20 rows: " + scoring.chunkSizes);
            assertEquals(List.of(io.bitrelay.runtime.eval.PromptScoring.scoreWhole(model, prompt, 3)), scoring.scores);
            Object[] expected = solo(generatingPrompt, 12, SamplingParams.greedy());
            assertEquals(expected[1], generating.awaitEnd());
            assertArrayEquals((int[]) expected[0], generating.tokenArray());
        }
    }

    @Test
    void shouldGenerateFromAPromptFedInChunksWhatTheGeneratorGeneratesAlone() throws Exception {
        int[] longPrompt = prompt(45, 3);
        int[] shortPrompt = prompt(6, 2);
        SamplingParams seeded = new SamplingParams(0.9f, 20, 0.95f, 4242L);
        // 16 tokens a step: the long prompt goes in three chunks beside the short job's decode tokens
        try (LocalGenerationBackend backend = LocalGenerationBackend.start(model, new LocalBackendSettings(4, 16, 16))) {
            RecordingListener running = new RecordingListener();
            backend.submit(new GenerationJob("short", shortPrompt, 14, SamplingParams.greedy(), true), running);
            RecordingListener chunked = new RecordingListener();
            backend.submit(new GenerationJob("long", longPrompt, 10, seeded, true), chunked);
            Object[] expected = solo(longPrompt, 10, seeded);
            assertEquals(expected[1], chunked.awaitEnd());
            assertArrayEquals((int[]) expected[0], chunked.tokenArray(), "chunked prefill changes no token, seeded or not");
            Object[] expectedShort = solo(shortPrompt, 14, SamplingParams.greedy());
            assertEquals(expectedShort[1], running.awaitEnd());
            assertArrayEquals((int[]) expectedShort[0], running.tokenArray());
        }
    }
}
