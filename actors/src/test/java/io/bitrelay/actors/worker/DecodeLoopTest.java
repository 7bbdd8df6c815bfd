package io.bitrelay.actors.worker;

import io.bitrelay.actors.coordinator.FinishReason;
import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.coordinator.Scheduler;
import io.bitrelay.actors.coordinator.SchedulerSettings;
import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.runtime.generate.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The coordinator's {@link Scheduler} and the first stage's {@link ResidentBatches} together, with the messages
 * between them delivered in random interleavings (each channel in order, as Pekko and Aeron keep it) and a
 * deterministic "model" whose token depends on the sequence and position only. Every client must see exactly
 * its tokens, the right finish, and no step may reach a stage after that stage freed one of its sequences.
 */
class DecodeLoopTest {
    private static final int EOS = 2;

    /** The model: the next token after {@code position} tokens of sequence {@code job}; EOS now and then. */
    private static int token(int job, int position) {
        int h = (job * 7919 + position * 104729) % 23;
        return h == 5 ? EOS : 3 + h;
    }

    private record Sampled(long batchId, int[] ids, int[] tokens) {
    }

    private record Left(long batchId, int[] ids) {
    }

    @Test
    void shouldDeliverEveryTokenOnceAndNeverStepAFreedSequenceInAnyInterleaving() {
        for (int seed = 0; seed < 200; seed++) {
            runOnce(new Random(seed), seed, false);
        }
    }

    /**
     * A stage that is first and last at once and runs steps ahead: the step after a batch's step out is formed (and
     * computed) before that step's tokens are known, and the coordinator learns of a step's tokens when the first
     * stage takes them, never before the step ahead was formed.
     */
    @Test
    void shouldDeliverEveryTokenOnceWhenStepsRunAheadOfTheirTokens() {
        for (int seed = 0; seed < 200; seed++) {
            runOnce(new Random(seed), seed, true);
        }
        assertTrue(stepsFormedAhead > 1000, "steps formed ahead: " + stepsFormedAhead);
        assertTrue(rowsNobodyReads > 50, "rows computed ahead for members that had ended: " + rowsNobodyReads);
    }

    private int stepsFormedAhead;
    private int rowsNobodyReads;

    private void runOnce(Random random, int seed, boolean stepsAhead) {
        int jobs = 6 + random.nextInt(10);
        Scheduler<Integer> scheduler = new Scheduler<>(new SchedulerSettings(1 + random.nextInt(3), 4, 40, 5, 60), EOS);
        ResidentBatches first = new ResidentBatches(8 + random.nextInt(40)); // prompts up to 12 tokens: some go in chunks
        ArrayDeque<Object> toFirst = new ArrayDeque<>();            // coordinator → first stage: joins and leaves, in order
        ArrayDeque<MicroBatch> pipeline = new ArrayDeque<>();       // first stage → ... → last stage (the data plane)
        ArrayDeque<Sampled> lastToFirst = new ArrayDeque<>();
        ArrayDeque<Object> toCoordinator = new ArrayDeque<>();      // last stage's reports, first stage's confirmations
        ArrayDeque<int[]> closes = new ArrayDeque<>();              // coordinator → stages
        Set<Integer> freed = new HashSet<>();
        Map<Integer, Integer> cached = new HashMap<>();             // what the stages hold per sequence
        Map<Integer, List<Integer>> seen = new HashMap<>();
        Map<Integer, FinishReason> finished = new HashMap<>();
        Map<Integer, GenerationJob> submitted = new HashMap<>();
        Set<Integer> cancelled = new HashSet<>();
        int nextJob = 0;
        java.util.function.Consumer<Scheduler.Event<Integer>> client = event -> {
            switch (event) {
                case Scheduler.Token<Integer> t -> seen.computeIfAbsent(t.client(), k -> new ArrayList<>()).add(t.token());
                case Scheduler.Finished<Integer> f -> assertEquals(null, finished.put(f.client(), f.reason()), "finished twice");
                case Scheduler.Failed<Integer> f -> throw new AssertionError("seed " + seed + ": " + f.reason());
                case Scheduler.PromptScores<Integer> p -> throw new AssertionError("no scoring here");
            }
        };
        java.util.function.Consumer<List<Integer>> close = ids -> {
            if (!ids.isEmpty()) {
                closes.add(ids.stream().mapToInt(Integer::intValue).toArray());
            }
        };
        for (int round = 0; round < 100_000 && (finished.size() < jobs || !toFirst.isEmpty() || !pipeline.isEmpty()
                || !lastToFirst.isEmpty() || !toCoordinator.isEmpty() || !closes.isEmpty()); round++) {
            int choice = random.nextInt(8);
            if (choice == 0 && nextJob < jobs) {
                int[] prompt = new int[1 + random.nextInt(12)];
                java.util.Arrays.fill(prompt, 9);
                GenerationJob job = new GenerationJob("r" + nextJob, prompt, 1 + random.nextInt(8), SamplingParams.greedy(), true);
                submitted.put(nextJob, job);
                scheduler.submit(job, nextJob++);
                toFirst.addAll(scheduler.dispatch());
            } else if (choice == 1 && random.nextInt(6) == 0 && nextJob > 0) {
                int victim = random.nextInt(nextJob);
                if (!finished.containsKey(victim) && cancelled.add(victim)) {
                    Scheduler.Cancellation c = scheduler.cancel("r" + victim, client);
                    if (c.closeNow() >= 0) {
                        close.accept(List.of(c.closeNow()));
                    } else if (c.leaveBatch() != 0) {
                        toFirst.add(new Left(c.leaveBatch(), new int[]{c.leaveSequence()}));
                    }
                }
            } else if (choice == 2 && !toFirst.isEmpty()) {
                Object message = toFirst.poll();
                step(message instanceof Left leave ? first.leave(leave.batchId(), leave.ids()) : first.join((MicroBatch) message),
                        pipeline, toCoordinator);
            } else if (choice == 3 && stepsAhead && !lastToFirst.isEmpty()) {
                // the step ahead of a batch whose one step out is computed but whose tokens have not come back
                Sampled out = List.copyOf(lastToFirst).get(random.nextInt(lastToFirst.size()));
                boolean alone = lastToFirst.stream().filter(x -> x.batchId() == out.batchId()).count() == 1
                        && pipeline.stream().noneMatch(b -> b.batchId() == out.batchId());
                if (alone) {
                    ResidentBatches.Next ahead = first.ahead(out.batchId());
                    assertEquals(0, ahead.left().length);
                    if (ahead.step() != null) {
                        for (MicroBatch.Entry e : ahead.step().entries()) {
                            boolean fed = e.tokens()[0] == ResidentBatches.SAMPLED_ON_DEVICE;
                            assertTrue(!fed || java.util.Arrays.stream(out.ids()).anyMatch(id -> id == e.sequenceId()),
                                    "seed " + seed + ": a fed member was sampled by the step out");
                        }
                        lastToFirst.add(compute(ahead.step(), freed, cached, seed));
                        stepsFormedAhead++;
                    }
                }
            } else if (choice == 4 && !pipeline.isEmpty()) {
                Sampled sampled = compute(pipeline.poll(), freed, cached, seed);
                lastToFirst.add(sampled);
                if (!stepsAhead) {
                    toCoordinator.add(sampled);
                }
            } else if (choice == 5 && !lastToFirst.isEmpty()) {
                Sampled s = lastToFirst.poll();
                if (stepsAhead) {
                    toCoordinator.add(s); // the stage reports a step's tokens as it takes them
                    for (int id : s.ids()) {
                        if (finished.containsKey(id - 1) || freed.contains(id)) {
                            rowsNobodyReads++;
                        }
                    }
                }
                step(first.sampled(s.batchId(), s.ids(), s.tokens()), pipeline, toCoordinator);
            } else if (choice == 6 && !toCoordinator.isEmpty()) {
                Object report = toCoordinator.poll();
                if (report instanceof Sampled s) {
                    close.accept(scheduler.complete(s.batchId(), s.ids(), s.tokens(), client));
                } else {
                    Left l = (Left) report;
                    close.accept(scheduler.left(l.batchId(), l.ids(), client));
                }
                toFirst.addAll(scheduler.dispatch());
            } else if (choice == 7 && !closes.isEmpty()) {
                for (int id : closes.poll()) {
                    assertTrue(freed.add(id), "seed " + seed + ": freed twice: " + id);
                }
            }
        }
        assertEquals(jobs, finished.size(), "seed " + seed + ": every job finishes");
        for (int j = 0; j < jobs; j++) {
            GenerationJob job = submitted.get(j);
            List<Integer> expected = new ArrayList<>();
            FinishReason reason = FinishReason.MAX_TOKENS;
            for (int n = 1; n <= job.maxNewTokens(); n++) {
                int t = token(j + 1, job.promptTokens().length + n - 1);
                if (t == EOS) {
                    reason = FinishReason.EOS;
                    break;
                }
                expected.add(t);
            }
            List<Integer> got = seen.getOrDefault(j, List.of());
            if (cancelled.contains(j) && finished.get(j) == FinishReason.CANCELLED) {
                assertEquals(expected.subList(0, got.size()), got, "seed " + seed + ", job " + j + ": a prefix until cancelled");
            } else {
                assertEquals(expected, got, "seed " + seed + ", job " + j);
                assertEquals(reason, finished.get(j), "seed " + seed + ", job " + j);
            }
        }
        assertEquals(0, first.residentCount(), "seed " + seed + ": the first stage keeps no batch");
        assertEquals(0, scheduler.inFlightCount());
    }

    /** The stages compute a step: every member's cache must hold exactly its start, and none may have been freed. */
    private static Sampled compute(MicroBatch batch, Set<Integer> freed, Map<Integer, Integer> cached, int seed) {
        int[] ids = new int[batch.entries().length];
        int[] tokens = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            MicroBatch.Entry e = batch.entries()[i];
            ids[i] = e.sequenceId();
            assertFalse(freed.contains(ids[i]), "seed " + seed + ": a step reached the stages after they freed " + ids[i]);
            assertEquals(cached.getOrDefault(ids[i], 0), e.startPosition(), "seed " + seed + ": cache continuity");
            cached.put(ids[i], e.startPosition() + e.tokens().length);
            tokens[i] = e.partialPrompt() ? -1 : token(ids[i], e.startPosition() + e.tokens().length);
        }
        return new Sampled(batch.batchId(), ids, tokens);
    }

    private static void step(ResidentBatches.Next next, ArrayDeque<MicroBatch> pipeline, ArrayDeque<Object> toCoordinator) {
        if (next.left().length > 0) {
            toCoordinator.add(new Left(next.batchId(), next.left()));
        }
        if (next.step() != null) {
            pipeline.add(next.step());
        }
    }
}
