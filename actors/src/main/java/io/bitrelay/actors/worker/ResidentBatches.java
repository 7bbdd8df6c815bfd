package io.bitrelay.actors.worker;

import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.pipeline.StopRule;
import io.bitrelay.runtime.generate.SamplingParams;

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
 * <p>A batch has at most one step in the pipeline: a member's next input is the token its last step sampled.
 * Entries that join while a step is out wait for the next one, so a prompt joins the running decode steps (one
 * mixed step) instead of waiting for a batch of its own. A step holds at most {@code stepTokens} rows: every decoding
 * member's token first, then prompts in chunks of what is left (chunked prefill, as Sarathi-Serve), so a long
 * prompt never stalls the running streams for more than one step's budget. A member leaves (a cancelled request)
 * once no step in the pipeline can hold it; the caller confirms that to the coordinator, which then frees its caches.
 *
 * <p>The single-process backend is first and last stage at once and forms its steps here too, so both loops stop a
 * sequence on the same {@link StopRule}.
 *
 * <p>Not thread-safe: the stage's compute thread (the backend's scheduler thread) owns it.
 */
public final class ResidentBatches {
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
        /** What it has still to feed: the rest of its prompt, or the one token sampled last. */
        int[] input;
        /** Tokens of {@link #input} the step out feeds. */
        int stepTokens;
        int position;
        int generated;
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

    private static final class Batch {
        final Map<Integer, Member> members = new LinkedHashMap<>();
        final List<MicroBatch.Entry> joining = new ArrayList<>();
        final List<Integer> leaving = new ArrayList<>();
        /** The members of the step in the pipeline, in row order; null while none is out. */
        Member[] out;
        int step;
    }

    private final Map<Long, Batch> batches = new HashMap<>();
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
        Batch batch = batches.computeIfAbsent(joining.batchId(), id -> new Batch());
        batch.joining.addAll(List.of(joining.entries()));
        return batch.out == null ? nextStep(joining.batchId(), batch, Next.NONE) : Next.nothing(joining.batchId());
    }

    /**
     * The last stage sampled {@code tokens} for the step of {@code batchId} that was out (a scored chunk's token is
     * −1). Members whose rule ends them, and chunks that run once, leave; the others get their token as input.
     *
     * @throws IllegalStateException when the sequences are not those of the step out (a bug, never the client's)
     */
    public Next sampled(long batchId, int[] sequenceIds, int[] tokens) {
        Batch batch = batches.get(batchId);
        if (batch == null) {
            return Next.nothing(batchId); // dropped after a failure: the coordinator has failed its sequences
        }
        Member[] out = batch.out;
        if (out == null || out.length != sequenceIds.length) {
            throw new IllegalStateException("micro-batch " + batchId + ": tokens for " + sequenceIds.length
                    + " sequences, but " + (out == null ? "no step" : "a step of " + out.length) + " is out");
        }
        batch.out = null;
        for (int i = 0; i < out.length; i++) {
            Member member = out[i];
            if (member.sequenceId != sequenceIds[i]) {
                throw new IllegalStateException("micro-batch " + batchId + ": row " + i + " sampled for sequence "
                        + sequenceIds[i] + ", the step held " + member.sequenceId);
            }
            advance(batch, member, tokens[i]);
        }
        int[] left = new int[batch.leaving.size()];
        for (int i = 0; i < left.length; i++) {
            left[i] = batch.leaving.get(i);
        }
        batch.leaving.clear();
        remove(batch, left);
        return nextStep(batchId, batch, left);
    }

    /** Takes {@code sequenceIds} out of the batch, members or still joining. */
    private static void remove(Batch batch, int[] sequenceIds) {
        for (int id : sequenceIds) {
            batch.members.remove(id);
            batch.joining.removeIf(e -> e.sequenceId() == id);
        }
    }

    private static void advance(Batch batch, Member member, int token) {
        member.position += member.stepTokens;
        member.sampling = null;
        member.kvCapacity = 0;
        if (member.stop == null) { // a scored chunk runs once; the coordinator sends the next
            batch.members.remove(member.sequenceId);
            return;
        }
        if (member.stepTokens < member.input.length) { // a prompt chunk: nothing was sampled, the rest goes next
            member.input = java.util.Arrays.copyOfRange(member.input, member.stepTokens, member.input.length);
            return;
        }
        member.generated++;
        if (member.stop.ends(token, member.generated)) {
            batch.members.remove(member.sequenceId);
            return;
        }
        member.input = new int[]{token};
    }

    /**
     * Cancelled sequences leave {@code batchId}: now, when no step of it is out (they are returned as left), or
     * when the step out comes back. Sequences the batch does not hold (already ended) are confirmed too.
     */
    public Next leave(long batchId, int[] sequenceIds) {
        Batch batch = batches.get(batchId);
        if (batch == null) {
            return new Next(batchId, null, sequenceIds.clone());
        }
        if (batch.out != null) {
            for (int id : sequenceIds) {
                batch.leaving.add(id);
            }
            return Next.nothing(batchId);
        }
        remove(batch, sequenceIds);
        if (batch.members.isEmpty() && batch.joining.isEmpty()) {
            batches.remove(batchId);
        }
        return new Next(batchId, null, sequenceIds.clone());
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
            batches.remove(batchId);
            return new Next(batchId, null, left);
        }
        Member[] out = budgeted(batch.members.values());
        MicroBatch.Entry[] entries = new MicroBatch.Entry[out.length];
        for (int i = 0; i < out.length; i++) {
            entries[i] = out[i].entry();
        }
        batch.out = out;
        return new Next(batchId, new MicroBatch(batchId, batch.step++, entries, false), left);
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
