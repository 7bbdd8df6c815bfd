package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.pipeline.MicroBatch;

import io.bitrelay.runtime.generate.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SchedulerTest {
    private static final int EOS = 2;
    private final List<Scheduler.Event<String>> events = new ArrayList<>();

    private static GenerationJob job(String id, int promptLength, int maxTokens) {
        int[] prompt = new int[promptLength];
        java.util.Arrays.fill(prompt, 7);
        return new GenerationJob(id, prompt, maxTokens, SamplingParams.greedy(), true);
    }

    private static int[] ids(MicroBatch batch) {
        return java.util.Arrays.stream(batch.entries()).mapToInt(MicroBatch.Entry::sequenceId).toArray();
    }

    @Test
    void shouldAdmitWhileTheRequestsKvCachesFitTheStagesMemory() {
        SchedulerSettings configured = new SchedulerSettings(2, 64, 4096, 64);
        SchedulerSettings roomy = configured.sizedFor(Long.MAX_VALUE, true);
        assertEquals(64, roomy.maxActiveSequences());
        assertEquals(32, roomy.maxBatchSequences(), "64 active over 2 micro-batches");
        assertEquals(64, configured.sizedFor(100, false).maxBatchSequences(), "a configured batch cap stays");
        assertThrows(IllegalArgumentException.class, () -> configured.sizedFor(0, true));
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 64, 4096, 64).sizedFor(40, true), EOS);
        for (int i = 0; i < 5; i++) {
            scheduler.submit(job("r" + i, 8, 4), "c" + i); // 12 positions each
        }
        List<MicroBatch> batches = scheduler.dispatch();
        assertEquals(1, batches.size());
        assertEquals(3, batches.getFirst().entries().length, "36 of 40 positions: two wait until a cache frees");
        assertEquals(12, batches.getFirst().entries()[0].kvCapacity(), "each stage sizes the caches for the request");
        assertEquals(2, scheduler.waitingCount());
        MicroBatch first = batches.getFirst();
        scheduler.complete(first.batchId(), ids(first), new int[]{EOS, 5, 5}, events::add);
        assertEquals(1, scheduler.dispatch().getFirst().entries().length, "the ended one's 12 positions admit one more");
        IllegalArgumentException tooLong = assertThrows(IllegalArgumentException.class,
                () -> scheduler.submit(job("huge", 30, 20), "c"));
        assertTrue(tooLong.getMessage().contains("50 KV cache positions"), tooLong.getMessage());
    }

    @Test
    void shouldSplitEachFirstTokenIntoWaitingAndTheFirstStepOnce() {
        long[] now = {1_000};
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 1, 4096, 64), EOS, () -> now[0]);
        scheduler.submit(job("a", 8, 3), "ca");
        scheduler.submit(job("b", 8, 3), "cb");
        now[0] = 1_100;
        MicroBatch first = scheduler.dispatch().getFirst(); // a joins after 100 ns; b waits: one sequence a batch
        now[0] = 1_400;
        scheduler.complete(first.batchId(), ids(first), new int[]{5}, events::add);
        assertEquals(new FirstTokenTimes(1, 100, 300), scheduler.firstTokenTimes());
        now[0] = 1_500;
        scheduler.complete(first.batchId(), ids(first), new int[]{EOS}, events::add); // a's second token ends it
        assertEquals(new FirstTokenTimes(1, 100, 300), scheduler.firstTokenTimes(), "only a first token counts");
        MicroBatch second = scheduler.dispatch().getFirst(); // b joins 500 ns after its submission
        now[0] = 1_550;
        scheduler.complete(second.batchId(), ids(second), new int[]{5}, events::add);
        assertEquals(new FirstTokenTimes(2, 100 + 500, 300 + 50), scheduler.firstTokenTimes());
    }

    @Test
    void shouldSpreadSequencesOverMicroBatchesSoEveryStageWorks() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(3, 16, 4096, 64), EOS);
        for (int i = 0; i < 7; i++) {
            scheduler.submit(job("r" + i, 4, 5), "client" + i);
        }
        List<MicroBatch> batches = scheduler.dispatch();
        assertEquals(3, batches.size());
        assertEquals(List.of(3, 2, 2), batches.stream().map(b -> b.entries().length).toList(),
                "a new batch per free slot, then the one with the fewest rows");
        assertTrue(scheduler.dispatch().isEmpty(), "every sequence is resident");
        MicroBatch.Entry first = batches.getFirst().entries()[0];
        assertEquals(0, first.startPosition());
        assertNotNull(first.firstChunkSampling(), "the first chunk carries sampling");
    }

    @Test
    void shouldFeedLastTokenAtTheNextPositionAndFinishAtMaxTokens() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 64), EOS);
        scheduler.submit(job("a", 5, 2), "alice");
        MicroBatch prefill = scheduler.dispatch().getFirst();
        MicroBatch.Entry entry = prefill.entries()[0];
        assertEquals(new io.bitrelay.actors.pipeline.StopRule(2, 0, true, EOS), entry.stop(), "the first stage's rule");
        assertTrue(scheduler.complete(prefill.batchId(), ids(prefill), new int[]{42}, events::add).isEmpty());
        assertTrue(scheduler.dispatch().isEmpty(), "the first stage feeds 42 back itself: nothing to send");
        List<Integer> ended = scheduler.complete(prefill.batchId(), ids(prefill), new int[]{43}, events::add);
        assertEquals(List.of(entry.sequenceId()), ended);
        assertEquals(List.of(new Scheduler.Token<>("alice", "a", 42), new Scheduler.Token<>("alice", "a", 43),
                new Scheduler.Finished<>("alice", "a", FinishReason.MAX_TOKENS)), events);
    }

    @Test
    void shouldStopOnEosAndAdmitWaitingJobsInOrder() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 1), EOS);
        scheduler.submit(job("first", 3, 10), "c1");
        scheduler.submit(job("second", 3, 10), "c2");
        MicroBatch batch = scheduler.dispatch().getFirst();
        assertEquals(1, batch.entries().length, "only one active sequence allowed");
        assertEquals(1, scheduler.waitingCount());
        scheduler.complete(batch.batchId(), ids(batch), new int[]{EOS}, events::add);
        assertEquals(new Scheduler.Finished<>("c1", "first", FinishReason.EOS), events.getLast());
        MicroBatch next = scheduler.dispatch().getFirst();
        assertEquals(0, next.entries()[0].startPosition());
        assertEquals(0, scheduler.waitingCount());
    }

    /** Steps a one-sequence scheduler, the last stage answering {@code answers} one per step. */
    private void run(Scheduler<String> scheduler, int... answers) {
        MicroBatch batch = scheduler.dispatch().getFirst();
        for (int answer : answers) {
            scheduler.complete(batch.batchId(), ids(batch), new int[]{answer}, events::add);
        }
    }

    @Test
    void shouldGoOnThroughEosWhenTheJobIgnoresIt() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 64), EOS);
        scheduler.submit(new GenerationJob("bench", new int[]{7, 7}, 3, SamplingParams.greedy(), false), "c");
        run(scheduler, EOS, 5, EOS);
        assertEquals(List.of(new Scheduler.Token<>("c", "bench", EOS), new Scheduler.Token<>("c", "bench", 5),
                new Scheduler.Token<>("c", "bench", EOS), new Scheduler.Finished<>("c", "bench", FinishReason.MAX_TOKENS)), events);
    }

    @Test
    void shouldStopOnEosOnlyAfterMinTokens() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 64), EOS);
        scheduler.submit(new GenerationJob("m", new int[]{7}, 10, SamplingParams.greedy(), true, false, -1, 2), "c");
        run(scheduler, EOS, 5, EOS);
        assertEquals(List.of(new Scheduler.Token<>("c", "m", EOS), new Scheduler.Token<>("c", "m", 5),
                new Scheduler.Finished<>("c", "m", FinishReason.EOS)), events);
    }

    @Test
    void shouldFailOnlyTheSequencesOfAFailedBatch() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(2, 1, 4096, 64), EOS);
        scheduler.submit(job("x", 3, 10), "cx");
        scheduler.submit(job("y", 3, 10), "cy");
        List<MicroBatch> batches = scheduler.dispatch();
        assertEquals(2, batches.size());
        List<Integer> failed = scheduler.fail(batches.get(0).batchId(), "BAD_CRC", events::add);
        assertEquals(1, failed.size());
        assertEquals(new Scheduler.Failed<>("cx", "x", "BAD_CRC"), events.getFirst());
        assertEquals(1, scheduler.activeCount());
        assertEquals(List.of(), scheduler.complete(batches.get(0).batchId(), ids(batches.get(0)), new int[]{5}, events::add),
                "a late result of a failed batch changes nothing");
        assertEquals(1, events.size());
    }

    @Test
    void shouldCancelWaitingIdleAndInFlightSequences() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 1), EOS);
        scheduler.submit(job("running", 3, 10), "c1");
        scheduler.submit(job("queued", 3, 10), "c2");
        MicroBatch batch = scheduler.dispatch().getFirst();
        assertEquals(Scheduler.Cancellation.NONE, scheduler.cancel("queued", events::add));
        assertEquals(new Scheduler.Finished<>("c2", "queued", FinishReason.CANCELLED), events.getLast());
        int running = ids(batch)[0];
        assertEquals(new Scheduler.Cancellation(-1, batch.batchId(), running), scheduler.cancel("running", events::add),
                "resident: the first stage must take it out before its caches go");
        assertTrue(scheduler.complete(batch.batchId(), ids(batch), new int[]{9}, events::add).isEmpty(),
                "a step out when the cancel came: its token is dropped, the caches kept");
        assertEquals(1, events.size());
        assertEquals(List.of(running), scheduler.left(batch.batchId(), new int[]{running}, events::add));
        assertEquals(new Scheduler.Finished<>("c1", "running", FinishReason.CANCELLED), events.getLast());
        assertEquals(0, scheduler.activeCount());
        assertEquals(0, scheduler.inFlightCount(), "the emptied batch frees its slot");
    }

    @Test
    void shouldLetPromptsLongerThanAStepJoinForTheFirstStageToChunk() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 100, 64), EOS);
        scheduler.submit(job("long", 300, 1), "c1");
        scheduler.submit(job("short", 10, 1), "c2");
        MicroBatch batch = scheduler.dispatch().getFirst();
        assertEquals(2, batch.entries().length);
        assertEquals(310, batch.tokenCount(), "whole prompts: steps of 100 rows take them in chunks");
    }

    @Test
    void shouldEndACancelledSequenceAtOnceWhenItsStepEndsItAnyway() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 4), EOS);
        scheduler.submit(job("short", 3, 1), "c");
        MicroBatch batch = scheduler.dispatch().getFirst();
        scheduler.cancel("short", events::add);
        assertEquals(List.of(ids(batch)[0]), scheduler.complete(batch.batchId(), ids(batch), new int[]{9}, events::add),
                "its last token: the first stage drops it too, no confirmation to wait for");
        assertEquals(List.of(new Scheduler.Finished<>("c", "short", FinishReason.CANCELLED)), events);
    }

    @Test
    void shouldJoinNewSequencesToTheRunningBatchAndSkipPromptChunkReports() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 2, 64, 8), EOS);
        scheduler.submit(job("a", 40, 10), "ca");
        MicroBatch first = scheduler.dispatch().getFirst();
        scheduler.submit(job("b", 100, 10), "cb");
        MicroBatch join = scheduler.dispatch().getFirst();
        assertEquals(first.batchId(), join.batchId(), "b joins the resident batch; the first stage chunks its prompt");
        assertEquals(100, join.entries()[0].tokens().length);
        scheduler.submit(job("c", 4, 10), "cc");
        assertTrue(scheduler.dispatch().isEmpty(), "two sequences per batch at most");
        scheduler.complete(first.batchId(), ids(first), new int[]{11}, events::add);
        scheduler.complete(first.batchId(), new int[]{ids(first)[0], ids(join)[0]}, new int[]{12, -1}, events::add);
        scheduler.complete(first.batchId(), new int[]{ids(first)[0], ids(join)[0]}, new int[]{13, 21}, events::add);
        assertEquals(List.of(new Scheduler.Token<>("ca", "a", 11), new Scheduler.Token<>("ca", "a", 12),
                new Scheduler.Token<>("ca", "a", 13), new Scheduler.Token<>("cb", "b", 21)), events,
                "b's first chunk (-1) samples nothing; its last gives its first token");
    }

    private static io.bitrelay.runtime.eval.TokenScore[] scoresFor(MicroBatch.Entry entry) {
        return java.util.Arrays.stream(entry.targets()).filter(t -> t >= 0)
                .mapToObj(t -> new io.bitrelay.runtime.eval.TokenScore(t, -1.0, new int[0], new double[0]))
                .toArray(io.bitrelay.runtime.eval.TokenScore[]::new);
    }

    @Test
    void shouldScoreALongPromptInChunksOfAtMostMaxBatchTokens() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 400, 64), EOS);
        int[] prompt = java.util.stream.IntStream.range(0, 1024).map(i -> 10 + i).toArray();
        scheduler.submit(GenerationJob.scoring("score", prompt, 2), "eval");
        List<Integer> chunkLengths = new ArrayList<>();
        List<Integer> ended = List.of();
        while (ended.isEmpty()) {
            List<MicroBatch> batches = scheduler.dispatch();
            assertEquals(1, batches.size());
            MicroBatch.Entry entry = batches.getFirst().entries()[0];
            assertNull(entry.firstChunkSampling(), "a scored chunk samples nothing");
            assertEquals(2, entry.logprobs());
            int start = entry.startPosition();
            assertEquals(java.util.stream.IntStream.range(start, start + entry.tokens().length).map(i -> 10 + i).boxed().toList(),
                    java.util.Arrays.stream(entry.tokens()).boxed().toList(), "chunk at " + start);
            for (int r = 0; r < entry.targets().length; r++) {
                assertEquals(start + r + 1 < prompt.length ? prompt[start + r + 1] : -1, entry.targets()[r]);
            }
            chunkLengths.add(entry.tokens().length);
            ended = scheduler.complete(batches.getFirst().batchId(), ids(batches.getFirst()), new int[]{-1},
                    new io.bitrelay.runtime.eval.TokenScore[][]{scoresFor(entry)}, events::add);
        }
        assertEquals(List.of(400, 400, 224), chunkLengths);
        assertEquals(List.of(1), ended, "the stages free the sequence's caches after the last chunk");
        int scored = events.stream().filter(e -> e instanceof Scheduler.PromptScores<String>)
                .mapToInt(e -> ((Scheduler.PromptScores<String>) e).scores().length).sum();
        assertEquals(1023, scored);
        assertEquals(new Scheduler.Finished<>("eval", "score", FinishReason.MAX_TOKENS), events.getLast());
        assertEquals(0, scheduler.activeCount());
    }

    @Test
    void shouldFailAScoringSequenceWhoseStepCameBackWithoutScores() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 64), EOS);
        scheduler.submit(GenerationJob.scoring("score", new int[]{5, 6, 7}, 0), "eval");
        MicroBatch batch = scheduler.dispatch().getFirst();
        assertEquals(List.of(1), scheduler.complete(batch.batchId(), ids(batch), new int[]{-1}, events::add));
        assertTrue(events.getLast() instanceof Scheduler.Failed<String> f && f.reason().contains("no scores"), events.toString());
    }

    // ---- replay after the pipeline is lost (docs/failover.md) ----------------------------------------------

    private static GenerationJob seeded(String id, int[] prompt, int maxTokens) {
        return new GenerationJob(id, prompt, maxTokens, new SamplingParams(0.8f, 40, 0.9f, 17), true);
    }

    private List<Integer> tokensOf(String requestId) {
        return events.stream().filter(e -> e instanceof Scheduler.Token<String> t && t.requestId().equals(requestId))
                .map(e -> ((Scheduler.Token<String>) e).token()).toList();
    }

    @Test
    void shouldReplayEveryRunningSequenceFromItsTokensSoFarAheadOfJobsThatNeverStarted() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 2), EOS);
        scheduler.submit(seeded("a", new int[]{5, 6, 7}, 5), "ca");
        scheduler.submit(seeded("b", new int[]{8, 9}, 5), "cb");
        scheduler.submit(seeded("c", new int[]{4}, 5), "cc"); // waits: two sequences at most
        MicroBatch lost = scheduler.dispatch().getFirst();
        scheduler.complete(lost.batchId(), ids(lost), new int[]{10, 20}, events::add);
        scheduler.complete(lost.batchId(), ids(lost), new int[]{11, 21}, events::add);

        assertEquals(0, scheduler.replayedCount());
        assertEquals(List.of(lost.batchId()), scheduler.requeueForReplay(events::add));
        assertEquals(2, scheduler.replayedCount(), "a and b were running; c never started");
        assertEquals(0, scheduler.activeCount());
        assertEquals(3, scheduler.waitingCount());
        assertEquals(0, scheduler.inFlightCount());
        MicroBatch replay = scheduler.dispatch().getFirst();
        assertTrue(replay.batchId() > lost.batchId(), "a lost batch's id is never used again");
        assertArrayEquals(ids(lost), ids(replay), "the replays go first, in their order; c still waits");
        MicroBatch.Entry a = replay.entries()[0];
        assertArrayEquals(new int[]{5, 6, 7, 10, 11}, a.tokens(), "prompt + tokens so far");
        assertEquals(0, a.startPosition());
        assertEquals(2, a.generated(), "the stop rule goes on where it was");
        assertEquals(new SamplingParams(0.8f, 40, 0.9f, 17), a.firstChunkSampling(), "the new last stage needs a sampler");
        assertEquals(8, a.kvCapacity(), "prompt + max_tokens, as before");
        assertArrayEquals(new int[]{8, 9, 20, 21}, replay.entries()[1].tokens());

        for (int step = 0; step < 3; step++) {
            scheduler.complete(replay.batchId(), ids(replay), new int[]{12 + step, 22 + step}, events::add);
        }
        assertEquals(List.of(10, 11, 12, 13, 14), tokensOf("a"), "no token twice, none lost");
        assertEquals(List.of(20, 21, 22, 23, 24), tokensOf("b"));
        assertTrue(events.contains(new Scheduler.Finished<>("ca", "a", FinishReason.MAX_TOKENS)), events.toString());
        assertEquals(1, scheduler.dispatch().getFirst().entries().length, "c starts once a and b ended");
        assertTrue(events.stream().noneMatch(e -> e instanceof Scheduler.Failed<String>), events.toString());
    }

    @Test
    void shouldResumeALostCoordinatorsJobFromWhatItsClientHas() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 2), EOS);
        scheduler.resume(seeded("a", new int[]{5, 6, 7}, 5), new int[]{10, 11}, 0, "ca", null);
        assertTrue(scheduler.holds("a"));
        assertEquals(1, scheduler.resumedCount());
        assertEquals(0, scheduler.replayedCount(), "not a replay of this coordinator's");
        MicroBatch batch = scheduler.dispatch().getFirst();
        MicroBatch.Entry a = batch.entries()[0];
        assertArrayEquals(new int[]{5, 6, 7, 10, 11}, a.tokens(), "prompt + tokens so far");
        assertEquals(0, a.startPosition());
        assertEquals(2, a.generated(), "the stop rule goes on where it was");
        assertEquals(new SamplingParams(0.8f, 40, 0.9f, 17), a.firstChunkSampling());
        assertEquals(8, a.kvCapacity(), "prompt + max_tokens, as on the lost coordinator");
        for (int step = 0; step < 3; step++) {
            scheduler.complete(batch.batchId(), ids(batch), new int[]{12 + step}, events::add);
        }
        assertEquals(List.of(12, 13, 14), tokensOf("a"), "only what the client does not have yet");
        assertEquals(new Scheduler.Finished<>("ca", "a", FinishReason.MAX_TOKENS), events.getLast());
        assertThrows(IllegalArgumentException.class,
                () -> scheduler.resume(seeded("b", new int[]{5}, 2), new int[]{10, 11, 12}, 0, "cb", null),
                "more tokens so far than max_tokens");
    }

    @Test
    void shouldResumeAScoringJobWithoutRepeatingTheScoresItsClientHas() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4, 8), EOS);
        int[] prompt = java.util.stream.IntStream.range(0, 10).map(i -> 100 + i).toArray();
        scheduler.resume(GenerationJob.scoring("score", prompt, 0), new int[0], 4, "eval", null);
        while (scheduler.activeCount() + scheduler.waitingCount() > 0) {
            MicroBatch batch = scheduler.dispatch().getFirst();
            scheduler.complete(batch.batchId(), ids(batch), new int[]{-1},
                    new io.bitrelay.runtime.eval.TokenScore[][]{scoresFor(batch.entries()[0])}, events::add);
        }
        List<Integer> scoredTargets = events.stream().filter(e -> e instanceof Scheduler.PromptScores<String>)
                .flatMap(e -> java.util.Arrays.stream(((Scheduler.PromptScores<String>) e).scores()))
                .map(io.bitrelay.runtime.eval.TokenScore::token).toList();
        assertEquals(java.util.stream.IntStream.range(5, 10).map(i -> 100 + i).boxed().toList(), scoredTargets,
                "the 4 scores the client had are not sent again");
    }

    @Test
    void shouldFinishCancelledSequencesInsteadOfReplayingThem() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 8), EOS);
        scheduler.submit(job("kept", 2, 8), "c1");
        scheduler.submit(job("gone", 2, 8), "c2");
        MicroBatch lost = scheduler.dispatch().getFirst();
        scheduler.complete(lost.batchId(), ids(lost), new int[]{30, 40}, events::add);
        assertNotEquals(0, scheduler.cancel("gone", events::add).leaveBatch(), "it waits for the first stage to let go");
        scheduler.requeueForReplay(events::add);
        assertEquals(new Scheduler.Finished<>("c2", "gone", FinishReason.CANCELLED), events.getLast());
        assertEquals(1, scheduler.replayedCount(), "only the sequence still wanted is replayed");
        assertEquals(1, scheduler.waitingCount());
        MicroBatch replay = scheduler.dispatch().getFirst();
        assertEquals(1, replay.entries().length);
        assertArrayEquals(new int[]{7, 7, 30}, replay.entries()[0].tokens());
    }

    @Test
    void shouldIgnoreWhatTheLostPipelineStillReports() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(2, 16, 4096, 8), EOS);
        scheduler.submit(job("a", 2, 8), "c1");
        MicroBatch lost = scheduler.dispatch().getFirst();
        scheduler.requeueForReplay(events::add);
        MicroBatch replay = scheduler.dispatch().getFirst();
        assertEquals(List.of(), scheduler.complete(lost.batchId(), ids(lost), new int[]{5}, events::add),
                "a late step of the lost batch");
        assertEquals(List.of(), scheduler.fail(lost.batchId(), "stage 1: publication not connected", events::add));
        assertEquals(List.of(), scheduler.left(lost.batchId(), ids(lost), events::add));
        assertEquals(List.of(), events, "the replay neither failed nor finished");
        assertTrue(scheduler.isInFlight(replay.batchId()));
        scheduler.complete(replay.batchId(), ids(replay), new int[]{5}, events::add);
        assertEquals(List.of(new Scheduler.Token<>("c1", "a", 5)), events);
    }

    @Test
    void shouldRescoreAReplayedPromptFromTheStartWithoutRepeatingScores() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4, 8), EOS);
        int[] prompt = java.util.stream.IntStream.range(0, 10).map(i -> 100 + i).toArray();
        scheduler.submit(GenerationJob.scoring("score", prompt, 0), "eval");
        MicroBatch first = scheduler.dispatch().getFirst();
        scheduler.complete(first.batchId(), ids(first), new int[]{-1},
                new io.bitrelay.runtime.eval.TokenScore[][]{scoresFor(first.entries()[0])}, events::add);
        scheduler.requeueForReplay(events::add);
        List<Integer> starts = new ArrayList<>();
        while (scheduler.activeCount() + scheduler.waitingCount() > 0) {
            MicroBatch batch = scheduler.dispatch().getFirst();
            starts.add(batch.entries()[0].startPosition());
            scheduler.complete(batch.batchId(), ids(batch), new int[]{-1},
                    new io.bitrelay.runtime.eval.TokenScore[][]{scoresFor(batch.entries()[0])}, events::add);
        }
        assertEquals(List.of(0, 4, 8), starts, "the new stages hold no cache of the scored prefix");
        List<Integer> scoredTargets = events.stream().filter(e -> e instanceof Scheduler.PromptScores<String>)
                .flatMap(e -> java.util.Arrays.stream(((Scheduler.PromptScores<String>) e).scores()))
                .map(io.bitrelay.runtime.eval.TokenScore::token).toList();
        assertEquals(java.util.stream.IntStream.range(1, 10).map(i -> 100 + i).boxed().toList(), scoredTargets,
                "every prompt token scored once, in order");
        assertEquals(new Scheduler.Finished<>("eval", "score", FinishReason.MAX_TOKENS), events.getLast());
    }

    @Test
    void shouldFailAsUnavailableWhatWaitedLongerThanTheCutoff() {
        long[] now = {1_000};
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 8), EOS, () -> now[0]);
        scheduler.submit(job("early", 2, 4), "c1");
        MicroBatch lost = scheduler.dispatch().getFirst();
        now[0] = 2_000;
        scheduler.submit(job("waiting", 2, 4), "c2");
        now[0] = 3_000;
        scheduler.requeueForReplay(events::add); // "early" waits again from now
        now[0] = 4_000;
        scheduler.submit(job("late", 2, 4), "c3");
        assertEquals(2, scheduler.expireWaiting(3_000, "no pipeline", events::add));
        assertEquals(List.of(new Scheduler.Failed<>("c1", "early", "no pipeline", FailureKind.UNAVAILABLE),
                new Scheduler.Failed<>("c2", "waiting", "no pipeline", FailureKind.UNAVAILABLE)), events);
        assertEquals(1, scheduler.waitingCount());
        assertTrue(lost.batchId() > 0);
    }

    @Test
    void shouldTakeARebuiltPipelinesLimitsOnlyWhileNothingIsAdmitted() {
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 8), EOS);
        scheduler.submit(job("small", 2, 4), "c1");
        scheduler.submit(job("large", 20, 20), "c2");
        scheduler.dispatch();
        SchedulerSettings smaller = new SchedulerSettings(2, 16, 4096, 8).sizedFor(30, false);
        assertThrows(IllegalStateException.class, () -> scheduler.reconfigure(smaller, events::add));
        scheduler.requeueForReplay(events::add);
        scheduler.reconfigure(smaller, events::add);
        assertTrue(events.getLast() instanceof Scheduler.Failed<String> f && f.requestId().equals("large")
                && f.reason().contains("40 KV cache positions"), events.toString());
        assertEquals(2, scheduler.settings().microBatches());
        assertEquals(1, scheduler.dispatch().getFirst().entries().length);
    }

    /**
     * A request past its deadline fails (DEADLINE, naming the key) whether it waited or ran, and its sequence is freed:
     * at once when no step holds it, once the first stage confirms it left its batch otherwise. Its client hears
     * nothing after the failure, and the slot it held admits the next job.
     */
    @Test
    void shouldFailAndFreeWhatPassedItsDeadlineWhetherWaitingOrRunning() {
        long[] now = {0};
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 16, 4096, 1), EOS, () -> now[0]);
        java.time.Duration second = java.time.Duration.ofSeconds(1);
        scheduler.submit(job("running", 2, 100), "c1", second);
        scheduler.submit(job("queued", 2, 100), "c2", second.multipliedBy(2));
        scheduler.submit(job("patient", 2, 4), "c3", null);
        MicroBatch batch = scheduler.dispatch().getFirst();
        scheduler.complete(batch.batchId(), ids(batch), new int[]{5}, events::add);
        now[0] = 999_999_999;
        assertEquals(List.of(), scheduler.expireDeadlines("test.deadline", events::add), "nothing is due yet");

        now[0] = 1_000_000_000;
        List<Scheduler.Cancellation> expired = scheduler.expireDeadlines("test.deadline", events::add);
        assertEquals(List.of(new Scheduler.Cancellation(-1, batch.batchId(), ids(batch)[0])), expired,
                "the running one leaves its batch through the first stage");
        Scheduler.Event<String> failed = events.getLast();
        assertTrue(failed instanceof Scheduler.Failed<String> f && f.kind() == FailureKind.DEADLINE
                && f.reason().contains("did not finish") && f.reason().contains("test.deadline")
                && f.reason().contains("after 1 generated tokens"), failed.toString());
        assertEquals(List.of(), scheduler.expireDeadlines("test.deadline", events::add), "failed once only");
        int told = events.size();
        assertEquals(List.of(ids(batch)[0]), scheduler.left(batch.batchId(), ids(batch), events::add), "its caches are freed");
        assertEquals(told, events.size(), "no CANCELLED after the failure");
        assertEquals(0, scheduler.activeCount());

        now[0] = 2_000_000_000;
        assertEquals(List.of(Scheduler.Cancellation.NONE), scheduler.expireDeadlines("test.deadline", events::add),
                "the queued one leaves the queue; nothing to free");
        assertTrue(events.getLast() instanceof Scheduler.Failed<String> f && f.requestId().equals("queued")
                && f.kind() == FailureKind.DEADLINE && f.reason().contains("did not start")
                && f.reason().contains("0 requests were queued ahead of it"), events.getLast().toString());
        assertEquals(told + 1, events.size());

        now[0] = Long.MAX_VALUE / 2;
        assertEquals(List.of(), scheduler.expireDeadlines("test.deadline", events::add), "no deadline, never due");
        assertEquals(1, scheduler.dispatch().getFirst().entries().length, "the freed slot admits the patient one");
        assertEquals(1, scheduler.activeCount());
        assertEquals(0, scheduler.waitingCount());
    }

    @Test
    void shouldFreeAnAdmittedSequenceInNoBatchAtOnceWhenItsDeadlinePasses() {
        long[] now = {0};
        // one micro-batch of one sequence: the second admitted sequence holds its KV caches but waits for a place
        Scheduler<String> scheduler = new Scheduler<>(new SchedulerSettings(1, 1, 4096, 2), EOS, () -> now[0]);
        scheduler.submit(job("placed", 2, 50), "c1", null);
        scheduler.submit(job("idle", 2, 50), "c2", java.time.Duration.ofMillis(5));
        assertEquals(1, scheduler.dispatch().getFirst().entries().length);
        assertEquals(2, scheduler.activeCount());
        now[0] = 5_000_000;
        List<Scheduler.Cancellation> expired = scheduler.expireDeadlines("k", events::add);
        assertEquals(1, expired.size());
        assertTrue(expired.getFirst().closeNow() > 0, "its caches are freed now: " + expired);
        assertEquals(1, scheduler.activeCount());
        assertEquals(List.of(new Scheduler.Failed<>("c2", "idle", events.getFirst() instanceof Scheduler.Failed<String> f
                ? f.reason() : "?", FailureKind.DEADLINE)), events, "one failure, no CANCELLED after it");
    }
}
