package io.bitrelay.actors.worker;

import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.pipeline.StopRule;
import io.bitrelay.runtime.generate.SamplingParams;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The first stage's half of the decode loop. The coordinator sends each sequence once, joining a resident
 * micro-batch; from then on this class forms the batch's steps itself, feeding every member the token the last
 * stage sampled for it, until the member's {@link StopRule} ends it. The coordinator learns of the tokens from the
 * last stage in parallel, so it is no longer a hop between one step and the next (it was two Pekko messages).
 *
 * <p>A batch has one step in the pipeline, or two on a stage that is first and last at once and runs steps ahead
 * ({@link #ahead}): there the step after the one out is formed before the out step's tokens reach the host, each
 * decoding member fed {@link #SAMPLED_ON_DEVICE} (the token its previous step sampled, read on the device), and a
 * member learns that it ended one step late: the step ahead computed a row for it that nobody reads (its KV
 * capacity, prompt + max tokens, holds that extra position). Entries that join while a step is out wait for the
 * next one, so a prompt joins the running decode steps (one mixed step) instead of waiting for a batch of its own.
 * A step holds at most {@code stepTokens} rows: every decoding member's token first, then prompts in chunks of what
 * is left (chunked prefill, as Sarathi-Serve), so a long prompt never stalls the running streams for more than one
 * step's budget. A member leaves (a cancelled request) once no step in the pipeline can hold it; the caller
 * confirms that to the coordinator, which then frees its caches.
 *
 * <p>A member's state moves on when a step is formed (its position, what it feeds next); the step's tokens, when
 * they come back, only end members or tell what a member feeds next.
 *
 * <p>The single-process backend is first and last stage at once and forms its steps here too, so both loops stop a
 * sequence on the same {@link StopRule}.
 *
 * <p>Not thread-safe: the stage's compute thread (the backend's scheduler thread) owns it.
 */
public final class ResidentBatches {
    /** The input of a member fed the token its step out sampled, which only the device holds yet. */
    public static final int SAMPLED_ON_DEVICE = -1;

    /** What an event leads to: the step to compute now (null: none), and members whose leaving is now safe. */
    public record Next(long batchId, MicroBatch step, int[] left) {
        static final int[] NONE = new int[0];

        static Next nothing(long batchId) {
            return new Next(batchId, null, NONE);
        }
    }

    private static final class Member {
        final int sequenceId;
        final StopRule stop;
        final int logprobs;
        /** What it has still to feed: the rest of its prompt, the one token sampled last, or {@link #FED}. */
        int[] input;
        /** Tokens of {@link #input} the step being formed feeds. */
        int stepTokens;
        int position;
        int generated;
        /** Steps out whose token this member waits for: its input is known when none. */
        int pendingSamples;
        /** Sent with the member's first step only (the last stage keeps it from then on), like the KV capacity. */
        SamplingParams sampling;
        int kvCapacity;
        int[] targets;

        Member(MicroBatch.Entry entry) {
            this.sequenceId = entry.sequenceId();
            this.stop = entry.stop();
            this.logprobs = entry.logprobs();
            this.input = entry.tokens();
            this.position = entry.startPosition();
            this.generated = entry.generated();
            this.sampling = entry.firstChunkSampling();
            this.kvCapacity = entry.kvCapacity();
            this.targets = entry.targets();
        }

        boolean decoding() {
            return input.length == 1 && targets == null;
        }

        MicroBatch.Entry entry() {
            boolean partial = stepTokens < input.length;
            int[] tokens = partial ? java.util.Arrays.copyOf(input, stepTokens) : input;
            return new MicroBatch.Entry(sequenceId, tokens, position, sampling, logprobs, targets, stop, generated, kvCapacity,
                    partial);
        }
    }

    private static final int[] FED = {SAMPLED_ON_DEVICE};

    /** A step in the pipeline: its members in row order, and per member the count its sampled token ends (−1: none). */
    private record OutStep(Member[] members, int[] generatedAt) {
        boolean holds(int sequenceId) {
            for (Member member : members) {
                if (member.sequenceId == sequenceId) {
                    return true;
                }
            }
            return false;
        }
    }

    private static final class Batch {
        final Map<Integer, Member> members = new LinkedHashMap<>();
        final List<MicroBatch.Entry> joining = new ArrayList<>();
        /** Members that left while a step out holds them: confirmed once none does. */
        final List<Integer> leaving = new ArrayList<>();
        /** The steps in the pipeline, oldest first. */
        final ArrayDeque<OutStep> out = new ArrayDeque<>(2);
        int step;

        boolean holds(int sequenceId) {
            for (OutStep step : out) {
                if (step.holds(sequenceId)) {
                    return true;
                }
            }
            return false;
        }

        boolean idle() {
            return members.isEmpty() && joining.isEmpty() && out.isEmpty();
        }
    }

    private final Map<Long, Batch> batches = new HashMap<>();
    /**
     * The next step number of batches that retired (emptied), most recently first: the coordinator may place a new
     * sequence in a batch before it hears that the batch emptied here, and the batch made anew must go on counting,
     * since a later stage refuses a step number it took before as a replay ({@link ReplayGuard}, as many batches).
     */
    private final Map<Long, Integer> retiredSteps = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, Integer> eldest) {
            return size() > ReplayGuard.REMEMBERED_BATCHES;
        }
    };
    private final int stepTokens;

    /** @param stepTokens rows one step holds at most (the stages' max-batch-tokens) */
    public ResidentBatches(int stepTokens) {
        if (stepTokens < 1) {
            throw new IllegalArgumentException("a step needs room for at least one token, got " + stepTokens);
        }
        this.stepTokens = stepTokens;
    }

    /** {@code joining}'s entries join its batch (made if new); they run now unless a step of the batch is out. */
    public Next join(MicroBatch joining) {
        Batch batch = batches.computeIfAbsent(joining.batchId(), id -> {
            Batch made = new Batch();
            made.step = retiredSteps.getOrDefault(id, 0);
            return made;
        });
        batch.joining.addAll(List.of(joining.entries()));
        return batch.out.isEmpty() ? nextStep(joining.batchId(), batch, Next.NONE) : Next.nothing(joining.batchId());
    }

    /**
     * The step after the one of {@code batchId} in the pipeline, formed before that one's tokens come back: every
     * member goes on as if its rule had not ended it, a decoding member fed {@link #SAMPLED_ON_DEVICE}. Nothing when
     * the batch has no step or two steps out, or when a member (or a joining entry) needs the host between steps:
     * log-probabilities, or a scored prompt.
     */
    public Next ahead(long batchId) {
        Batch batch = batches.get(batchId);
        if (batch == null || batch.out.size() != 1) {
            return Next.nothing(batchId);
        }
        for (Member member : batch.members.values()) {
            if (member.logprobs >= 0 || member.targets != null) {
                return Next.nothing(batchId);
            }
        }
        for (MicroBatch.Entry entry : batch.joining) {
            if (entry.logprobs() >= 0 || entry.targets() != null) {
                return Next.nothing(batchId);
            }
        }
        return nextStep(batchId, batch, Next.NONE);
    }

    /**
     * The last stage sampled {@code tokens} for the oldest step of {@code batchId} in the pipeline (a scored chunk's
     * or an unfinished prompt chunk's token is −1). Members whose rule ends them leave; the others feed their token
     * next, unless a step ahead has fed it already.
     *
     * @throws IllegalStateException when the sequences are not those of the step out (a bug, never the client's)
     */
    public Next sampled(long batchId, int[] sequenceIds, int[] tokens) {
        Batch batch = batches.get(batchId);
        if (batch == null) {
            return Next.nothing(batchId); // dropped after a failure: the coordinator has failed its sequences
        }
        OutStep out = batch.out.peek();
        if (out == null || out.members().length != sequenceIds.length) {
            throw new IllegalStateException("micro-batch " + batchId + ": tokens for " + sequenceIds.length
                    + " sequences, but " + (out == null ? "no step" : "a step of " + out.members().length) + " is out");
        }
        batch.out.poll();
        for (int i = 0; i < sequenceIds.length; i++) {
            Member member = out.members()[i];
            if (member.sequenceId != sequenceIds[i]) {
                throw new IllegalStateException("micro-batch " + batchId + ": row " + i + " sampled for sequence "
                        + sequenceIds[i] + ", the step held " + member.sequenceId);
            }
            int generatedAt = out.generatedAt()[i];
            if (generatedAt < 0) {
                continue;
            }
            member.pendingSamples--;
            if (batch.members.get(member.sequenceId) != member) {
                continue; // it left meanwhile
            }
            if (member.stop.ends(tokens[i], generatedAt)) {
                batch.members.remove(member.sequenceId);
            } else if (member.pendingSamples == 0) {
                member.input = new int[]{tokens[i]};
            }
        }
        int[] left = confirmLeaving(batch);
        if (!batch.out.isEmpty()) {
            return new Next(batchId, null, left);
        }
        return nextStep(batchId, batch, left);
    }

    /** The members that left and that no step out holds any more: their leaving is confirmed now. */
    private static int[] confirmLeaving(Batch batch) {
        if (batch.leaving.isEmpty()) {
            return Next.NONE;
        }
        List<Integer> confirmed = new ArrayList<>();
        batch.leaving.removeIf(id -> {
            if (batch.holds(id)) {
                return false;
            }
            confirmed.add(id);
            return true;
        });
        return confirmed.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * Cancelled sequences leave {@code batchId} now; their leaving is confirmed (returned as left) at once when no
     * step out holds them, else when the last step that does comes back. Sequences the batch does not hold (already
     * ended) are confirmed too.
     */
    public Next leave(long batchId, int[] sequenceIds) {
        Batch batch = batches.get(batchId);
        if (batch == null) {
            return new Next(batchId, null, sequenceIds.clone());
        }
        List<Integer> now = new ArrayList<>();
        for (int id : sequenceIds) {
            batch.members.remove(id);
            batch.joining.removeIf(e -> e.sequenceId() == id);
            if (batch.holds(id)) {
                batch.leaving.add(id);
            } else {
                now.add(id);
            }
        }
        if (batch.idle()) {
            retire(batchId, batch);
        }
        return new Next(batchId, null, now.stream().mapToInt(Integer::intValue).toArray());
    }

    private void retire(long batchId, Batch batch) {
        batches.remove(batchId);
        retiredSteps.put(batchId, batch.step);
    }

    /** Forgets a batch whose step failed (the coordinator failed its sequences): no step of it comes back. */
    public void drop(long batchId) {
        batches.remove(batchId);
    }

    /** Batches holding members or with a step out. */
    public int residentCount() {
        return batches.size();
    }

    private Next nextStep(long batchId, Batch batch, int[] left) {
        for (MicroBatch.Entry entry : batch.joining) {
            batch.members.put(entry.sequenceId(), new Member(entry));
        }
        batch.joining.clear();
        if (batch.members.isEmpty()) {
            if (batch.idle()) {
                retire(batchId, batch);
            }
            return new Next(batchId, null, left);
        }
        Member[] out = budgeted(batch.members.values());
        MicroBatch.Entry[] entries = new MicroBatch.Entry[out.length];
        int[] generatedAt = new int[out.length];
        for (int i = 0; i < out.length; i++) {
            entries[i] = out[i].entry();
            generatedAt[i] = moveOn(batch, out[i]);
        }
        batch.out.add(new OutStep(out, generatedAt));
        return new Next(batchId, new MicroBatch(batchId, batch.step++, entries, false), left);
    }

    /**
     * A member's state once its part of a step is formed; returns the generated count the step's token makes
     * (its rule is checked against it when the token comes back), or −1 when the step samples nothing for it.
     */
    private static int moveOn(Batch batch, Member member) {
        member.position += member.stepTokens;
        member.sampling = null;
        member.kvCapacity = 0;
        if (member.stop == null) { // a scored chunk runs once; the coordinator sends the next
            batch.members.remove(member.sequenceId);
            return -1;
        }
        if (member.stepTokens < member.input.length) { // a prompt chunk: nothing is sampled, the rest goes next
            member.input = java.util.Arrays.copyOfRange(member.input, member.stepTokens, member.input.length);
            return -1;
        }
        member.generated++;
        member.pendingSamples++;
        member.input = FED;
        return member.generated;
    }

    /**
     * The members a step takes within {@link #stepTokens} rows, and how many tokens each feeds: every decoding member
     * one, then the others in joining order, a prompt a chunk of what is left, a scored chunk whole or not at all.
     */
    private Member[] budgeted(java.util.Collection<Member> members) {
        List<Member> out = new ArrayList<>(members.size());
        int used = 0;
        for (Member member : members) {
            if (member.decoding()) {
                member.stepTokens = 1;
                out.add(member);
                used++;
            }
        }
        for (Member member : members) {
            if (member.decoding()) {
                continue;
            }
            int room = stepTokens - used;
            if (member.targets != null) {
                if (member.input.length > room && !out.isEmpty()) {
                    continue; // the coordinator sized it for a step of its own at worst
                }
                member.stepTokens = member.input.length;
            } else if (room > 0) {
                member.stepTokens = Math.min(member.input.length, room);
            } else {
                continue;
            }
            out.add(member);
            used += member.stepTokens;
        }
        return out.toArray(Member[]::new);
    }
}
