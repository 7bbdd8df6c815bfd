package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.pipeline.StopRule;
import io.bitrelay.runtime.eval.PromptScoring;
import io.bitrelay.runtime.eval.TokenScore;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * Continuous batching, free of actors so it can be tested alone. Jobs wait in arrival order until a
 * sequence slot frees and their KV caches fit. Admitted sequences join resident micro-batches (at most
 * {@code microBatches}, so every pipeline stage has one): a new batch while a slot is free, else the one with the
 * least work that has room. A generating sequence is sent once, with its whole prompt; the first stage feeds the
 * prompt in chunks that fit its steps, then the sequence's own tokens step after step until its {@link StopRule}
 * ends it, and this class learns of each token from the last stage, applies the same rule and tells the client. A job that scores its prompt goes through in chunks of at most
 * {@code maxBatchTokens} tokens, each sent once, carrying the prompt tokens its rows predict; it samples nothing
 * and ends (MAX_TOKENS) when its last chunk's scores are back.
 *
 * <p>Reports lag the first stage by up to one step, so a report may leave out sequences that just joined; a
 * cancelled sequence still in a batch leaves it through the first stage ({@link #left}), which confirms once no
 * step in the pipeline holds it: only then may its caches be freed.
 *
 * <p>When the pipeline is lost, {@link #requeueForReplay} puts every admitted sequence back at the front of the queue
 * to be replayed on the next one from what its client already has ({@link ScheduledSequence}); while no pipeline
 * serves, the owner fails what waited too long with {@link #expireWaiting}.
 *
 * <p>The single-process backend drives it too, as a one-stage pipeline with one micro-batch, so a request ends for
 * the same reasons on one host as in a cluster.
 *
 * @param <R> whatever the owner uses to reach a job's client (an actor reference in the coordinator, a token
 *            listener in the single-process backend)
 */
public final class Scheduler<R> {
    private SchedulerSettings settings;
    private final int eosTokenId;
    private final LongSupplier clock;
    private FirstTokenTimes firstTokens = FirstTokenTimes.NONE;
    private final ArrayDeque<ScheduledSequence<R>> waiting = new ArrayDeque<>();
    private final Map<Integer, ScheduledSequence<R>> active = new LinkedHashMap<>();
    private final Map<String, ScheduledSequence<R>> byRequest = new HashMap<>();
    private final Map<Long, Resident> residents = new LinkedHashMap<>();
    private int nextSequenceId = 1;
    /** Never reused, not even by another pipeline: a late report of a lost pipeline's batch cannot touch a replay. */
    private long nextBatchId = 1;
    /** KV cache positions the active sequences hold. */
    private long kvTokensUsed;
    /** Sequences sent back to the queue by {@link #requeueForReplay} so far, for the chaos checks and benches. */
    private long replayed;
    /** Jobs taken over from a lost coordinator by {@link #resume} so far. */
    private long resumed;

    /** What happened to a sequence when a step completed or failed; the owner relays it to the client. */
    public sealed interface Event<R> {
        R client();

        String requestId();
    }

    /** @param score the token's log-probability when the job asked for logprobs, else null */
    public record Token<R>(R client, String requestId, int token, TokenScore score) implements Event<R> {
        public Token(R client, String requestId, int token) {
            this(client, requestId, token, null);
        }
    }

    /** The next chunk of a scoring job's prompt scores. */
    public record PromptScores<R>(R client, String requestId, TokenScore[] scores) implements Event<R> {
    }

    public record Finished<R>(R client, String requestId, FinishReason reason) implements Event<R> {
    }

    /** @param kind why it failed, which decides the client's answer */
    public record Failed<R>(R client, String requestId, String reason, FailureKind kind) implements Event<R> {
        public Failed(R client, String requestId, String reason) {
            this(client, requestId, reason, FailureKind.BROKEN);
        }
    }

    /**
     * What a cancel asks of the owner: free {@code closeNow}'s caches (≥ 0), or have the first stage take
     * {@code leaveSequence} out of resident batch {@code leaveBatch} (≠ 0); neither when the job had not started.
     */
    public record Cancellation(int closeNow, long leaveBatch, int leaveSequence) {
        static final Cancellation NONE = new Cancellation(-1, 0, -1);
    }

    /** A resident micro-batch as far as the reports show: its members, and the rows of those not reported yet. */
    private static final class Resident {
        final Map<Integer, Integer> unreportedRows = new HashMap<>();
        final java.util.Set<Integer> members = new java.util.LinkedHashSet<>();

        /** Rows its next step will have at most: one per decoding member, a joined chunk's whole length. */
        int rows() {
            int rows = members.size() - unreportedRows.size();
            for (int length : unreportedRows.values()) {
                rows += length;
            }
            return rows;
        }
    }

    public Scheduler(SchedulerSettings settings, int eosTokenId) {
        this(settings, eosTokenId, System::nanoTime);
    }

    /** @param clock nanoseconds for how long jobs wait ({@link #expireWaiting}); tests pass their own */
    public Scheduler(SchedulerSettings settings, int eosTokenId, LongSupplier clock) {
        this.settings = settings;
        this.eosTokenId = eosTokenId;
        this.clock = clock;
    }

    /** Where the first tokens so far spent their time in here: waiting, and the first step. */
    public FirstTokenTimes firstTokenTimes() {
        return firstTokens;
    }

    /** {@link #submit(GenerationJob, Object, Duration)} without a deadline. */
    public void submit(GenerationJob job, R client) {
        submit(job, client, null);
    }

    /**
     * Queues a job.
     *
     * @param deadline how long from now it may take to start and finish, or null for ever; past it
     *                 {@link #expireDeadlines} fails it and frees its sequence
     * @throws IllegalArgumentException for a request id in use, or a job whose KV caches the stages could never hold
     */
    public void submit(GenerationJob job, R client, Duration deadline) {
        if (byRequest.containsKey(job.requestId())) {
            throw new IllegalArgumentException("request id " + job.requestId() + " is already in use");
        }
        long needed = (long) job.promptTokens().length + job.maxNewTokens();
        if (needed > settings.kvTokens()) {
            throw new IllegalArgumentException("the request needs " + needed + " KV cache positions (prompt + max_tokens), the"
                    + " stages' memory holds " + settings.kvTokens());
        }
        ScheduledSequence<R> sequence = new ScheduledSequence<>(nextSequenceId++, job, client, eosTokenId, clock.getAsLong());
        if (deadline != null) {
            sequence.deadline = deadline;
            sequence.deadlineNanos = sequence.queuedAtNanos + deadline.toNanos();
        }
        waiting.add(sequence);
        byRequest.put(job.requestId(), sequence);
    }

    /**
     * Queues a job that another coordinator ran before it was lost, from what its client already has (its gateway
     * kept it): it waits in the queue as a replay does ({@link #requeueForReplay}), joins at position 0 with its prompt
     * and {@code tokensSoFar} as its "prompt", goes on with its StopRule's count where it was, and its client gets only
     * what follows. A scoring job restarts its chunks and its first {@code promptScoresDelivered} scores are dropped.
     *
     * @throws IllegalArgumentException as {@link #submit(GenerationJob, Object, Duration)}, or for more tokens so far
     *                                  than the job may generate
     */
    public void resume(GenerationJob job, int[] tokensSoFar, int promptScoresDelivered, R client, Duration deadline) {
        if (tokensSoFar.length > job.maxNewTokens()) {
            throw new IllegalArgumentException("request " + job.requestId() + " resumes after " + tokensSoFar.length
                    + " tokens, more than its max_tokens " + job.maxNewTokens());
        }
        submit(job, client, deadline);
        ScheduledSequence<R> sequence = byRequest.get(job.requestId());
        sequence.resumeFrom(tokensSoFar, promptScoresDelivered);
        sequence.prepareReplay(sequence.queuedAtNanos);
        resumed++;
    }

    /** Whether a job of this request id is waiting or running. */
    public boolean holds(String requestId) {
        return byRequest.containsKey(requestId);
    }

    /**
     * Cancels a job. A waiting or idle sequence finishes now (the event goes to {@code events}); one in a resident
     * batch finishes when the first stage confirms it {@link #left} (or its step ends it first).
     */
    public Cancellation cancel(String requestId, Consumer<Event<R>> events) {
        ScheduledSequence<R> sequence = byRequest.get(requestId);
        if (sequence == null || sequence.cancelled) {
            return Cancellation.NONE;
        }
        if (waiting.remove(sequence)) {
            byRequest.remove(requestId);
            cancelled(sequence, events);
            return Cancellation.NONE;
        }
        if (sequence.batchId != 0) {
            sequence.cancelled = true;
            return new Cancellation(-1, sequence.batchId, sequence.id);
        }
        finish(sequence);
        cancelled(sequence, events);
        return new Cancellation(sequence.id, 0, -1);
    }

    /**
     * Fails every job whose deadline has passed ({@link FailureKind#DEADLINE}, naming {@code setting}) and cancels
     * it as {@link #cancel} does: a waiting one leaves the queue, a running one is freed now or once the first stage
     * confirms it left its batch. Its client hears nothing more of it. Returns what the owner must do for each.
     */
    public List<Cancellation> expireDeadlines(String setting, Consumer<Event<R>> events) {
        long now = clock.getAsLong();
        List<ScheduledSequence<R>> overdue = new ArrayList<>();
        for (ScheduledSequence<R> sequence : byRequest.values()) {
            if (sequence.deadline != null && !sequence.clientTold && !sequence.cancelled && sequence.deadlineNanos - now <= 0) {
                overdue.add(sequence);
            }
        }
        List<Cancellation> cancellations = new ArrayList<>();
        for (ScheduledSequence<R> sequence : overdue) {
            boolean started = !waiting.contains(sequence);
            String reason = "the request did not " + (started ? "finish" : "start") + " within its deadline of "
                    + sequence.deadline.toMillis() / 1000.0 + " s (" + setting + ")"
                    + (started ? " after " + sequence.generated + " generated tokens" : ": " + waitingAhead(sequence)
                    + " requests were queued ahead of it and " + active.size() + " running");
            events.accept(new Failed<>(sequence.client, sequence.job.requestId(), reason, FailureKind.DEADLINE));
            sequence.clientTold = true;
            cancellations.add(cancel(sequence.job.requestId(), events));
        }
        return cancellations;
    }

    private int waitingAhead(ScheduledSequence<R> sequence) {
        int ahead = 0;
        for (ScheduledSequence<R> other : waiting) {
            if (other == sequence) {
                break;
            }
            ahead++;
        }
        return ahead;
    }

    /** Tells the client its job ended CANCELLED, unless it already had its last event. */
    private void cancelled(ScheduledSequence<R> sequence, Consumer<Event<R>> events) {
        if (!sequence.clientTold) {
            events.accept(new Finished<>(sequence.client, sequence.job.requestId(), FinishReason.CANCELLED));
        }
    }

    /**
     * Admits waiting jobs and places every admitted sequence that is in no batch: into a new resident batch while
     * fewer than {@code microBatches} exist, else into the one with the fewest rows that has room for it. Returns,
     * per batch that got any, the joining entries (a new batch's first step, or what joins a running one).
     */
    public List<MicroBatch> dispatch() {
        while (!waiting.isEmpty() && active.size() < settings.maxActiveSequences()
                && kvTokensUsed + waiting.peek().kvTokens <= settings.kvTokens()) {
            ScheduledSequence<R> admitted = waiting.poll();
            active.put(admitted.id, admitted);
            kvTokensUsed += admitted.kvTokens;
        }
        Map<Long, List<MicroBatch.Entry>> joins = new LinkedHashMap<>();
        for (ScheduledSequence<R> sequence : active.values()) {
            if (sequence.batchId != 0) {
                continue;
            }
            long batchId = placeable(sequence);
            if (batchId == 0) {
                break; // arrival order: a later sequence does not overtake one that waits for room
            }
            Resident resident = residents.computeIfAbsent(batchId, id -> new Resident());
            int room = settings.maxBatchTokens() - resident.rows();
            int length = sequence.job.scorePrompt() ? Math.min(sequence.pendingInput.length, Math.max(1, room))
                    : sequence.pendingInput.length;
            MicroBatch.Entry entry = sequence.job.scorePrompt() ? scoredChunk(sequence, length)
                    : new MicroBatch.Entry(sequence.id, sequence.pendingInput, sequence.position,
                            sequence.started ? null : sequence.job.sampling(), sequence.job.logprobs(), null, sequence.stop,
                            sequence.generated, sequence.started ? 0 : sequence.kvTokens);
            resident.members.add(sequence.id);
            resident.unreportedRows.put(sequence.id, length);
            sequence.inFlightLength = length;
            sequence.batchId = batchId;
            if (sequence.joinedAtNanos == ScheduledSequence.NOT_JOINED) {
                sequence.joinedAtNanos = clock.getAsLong();
            }
            sequence.started = true;
            joins.computeIfAbsent(batchId, id -> new ArrayList<>()).add(entry);
        }
        List<MicroBatch> batches = new ArrayList<>();
        joins.forEach((batchId, entries) -> batches.add(new MicroBatch(batchId, 0, entries.toArray(MicroBatch.Entry[]::new), false)));
        return batches;
    }

    /** The batch {@code sequence} can join now: a new one while a slot is free, else the emptiest with room; 0 for none. */
    private long placeable(ScheduledSequence<R> sequence) {
        if (residents.size() < settings.microBatches()) {
            return nextBatchId++;
        }
        long best = 0;
        int bestRows = Integer.MAX_VALUE;
        for (Map.Entry<Long, Resident> entry : residents.entrySet()) {
            Resident resident = entry.getValue();
            int rows = resident.rows();
            // the first stage feeds a prompt in chunks that fit each step; a scored chunk is sized to fit here
            boolean fits = !sequence.job.scorePrompt() || rows < settings.maxBatchTokens();
            if (fits && resident.members.size() < settings.maxBatchSequences() && rows < bestRows) {
                best = entry.getKey();
                bestRows = rows;
            }
        }
        return best;
    }

    /** The next {@code length} prompt tokens of a scoring sequence, each with the token it predicts. */
    private MicroBatch.Entry scoredChunk(ScheduledSequence<R> sequence, int length) {
        int[] prompt = sequence.job.promptTokens();
        return new MicroBatch.Entry(sequence.id, Arrays.copyOf(sequence.pendingInput, length), sequence.position, null,
                sequence.job.logprobs(), PromptScoring.nextTokenTargets(prompt, sequence.position, length), null, 0,
                sequence.position == 0 ? sequence.kvTokens : 0);
    }

    /** {@link #complete(long, int[], int[], TokenScore[][], Consumer)} of a step without scores. */
    public List<Integer> complete(long batchId, int[] sequenceIds, int[] tokens, Consumer<Event<R>> events) {
        return complete(batchId, sequenceIds, tokens, null, events);
    }

    /**
     * Applies the tokens a step of resident batch {@code batchId} sampled and the scores it computed. Sequences
     * that ended or failed meanwhile are skipped. Returns the ids of sequences that ended (the stages free their
     * caches: the first stage applied the same rule and feeds them no more).
     *
     * @param scores per sequence: a scoring chunk's prompt scores, a sampled token's score (one element) when
     *               the job asked for logprobs, or null; the whole array may be null when there are none
     * A batch that is no longer resident (every member ended: a step run ahead of its tokens, or a late report of a
     * failed or lost pipeline) is ignored.
     *
     * @throws IllegalArgumentException for mismatched arrays
     */
    public List<Integer> complete(long batchId, int[] sequenceIds, int[] tokens, TokenScore[][] scores,
                                  Consumer<Event<R>> events) {
        Resident resident = residents.get(batchId);
        if (resident == null) {
            // Every member ended before this result came: a step a stage ran ahead of its tokens, or a failed or
            // lost pipeline's late report. Nobody waits for it.
            return List.of();
        }
        if (tokens.length != sequenceIds.length || (scores != null && scores.length != sequenceIds.length)) {
            throw new IllegalArgumentException("micro-batch " + batchId + ": " + sequenceIds.length + " sequences, "
                    + tokens.length + " tokens" + (scores == null ? "" : ", " + scores.length + " scores"));
        }
        List<Integer> ended = new ArrayList<>();
        for (int i = 0; i < sequenceIds.length; i++) {
            ScheduledSequence<R> sequence = active.get(sequenceIds[i]);
            if (sequence == null || sequence.batchId != batchId) {
                continue; // ended, failed or left meanwhile
            }
            if (!sequence.job.scorePrompt() && tokens[i] < 0) {
                continue; // a chunk of its prompt that goes on: nothing sampled yet
            }
            resident.unreportedRows.remove(sequence.id);
            sequence.position += sequence.inFlightLength;
            sequence.inFlightLength = 1;
            TokenScore[] sequenceScores = scores == null ? null : scores[i];
            if (sequence.job.scorePrompt()) {
                scored(sequence, resident, sequenceScores, ended, events);
            } else {
                generated(sequence, resident, tokens[i], sequenceScores, ended, events);
            }
        }
        release(batchId, resident);
        return ended;
    }

    private void scored(ScheduledSequence<R> sequence, Resident resident, TokenScore[] scores, List<Integer> ended, Consumer<Event<R>> events) {
        resident.members.remove(sequence.id); // a chunk runs once; the next one is placed afresh
        sequence.batchId = 0;
        String requestId = sequence.job.requestId();
        if (sequence.cancelled) {
            end(sequence, ended);
            cancelled(sequence, events);
            return;
        }
        if (scores == null) {
            end(sequence, ended);
            events.accept(new Failed<>(sequence.client, requestId, "the last stage returned no scores for a scored chunk"));
            return;
        }
        TokenScore[] undelivered = sequence.undeliveredScores(scores);
        if (undelivered != null) {
            events.accept(new PromptScores<>(sequence.client, requestId, undelivered));
        }
        int[] prompt = sequence.job.promptTokens();
        if (sequence.position >= prompt.length) {
            end(sequence, ended);
            events.accept(new Finished<>(sequence.client, requestId, FinishReason.MAX_TOKENS));
        } else {
            sequence.pendingInput = Arrays.copyOfRange(prompt, sequence.position, prompt.length);
        }
    }

    private void generated(ScheduledSequence<R> sequence, Resident resident, int token, TokenScore[] scores, List<Integer> ended,
                           Consumer<Event<R>> events) {
        sequence.sampled(token);
        if (sequence.generated == 1) {
            firstTokens = firstTokens.plus(sequence.joinedAtNanos - sequence.submittedAtNanos,
                    clock.getAsLong() - sequence.joinedAtNanos);
        }
        String requestId = sequence.job.requestId();
        boolean stops = sequence.stop.ends(token, sequence.generated);
        if (sequence.cancelled) {
            if (stops) { // the first stage drops it on this token too: no need to wait for its confirmation
                resident.members.remove(sequence.id);
                end(sequence, ended);
                cancelled(sequence, events);
            }
            return;
        }
        if (sequence.stop.endsWithEos(token, sequence.generated)) {
            resident.members.remove(sequence.id);
            end(sequence, ended);
            events.accept(new Finished<>(sequence.client, requestId, FinishReason.EOS));
            return;
        }
        events.accept(new Token<>(sequence.client, requestId, token, scores != null && scores.length == 1 ? scores[0] : null));
        if (stops) {
            resident.members.remove(sequence.id);
            end(sequence, ended);
            events.accept(new Finished<>(sequence.client, requestId, FinishReason.MAX_TOKENS));
        }
    }

    /**
     * The first stage took cancelled sequences out of {@code batchId}, and no step in the pipeline holds them:
     * they finish (CANCELLED). Returns those whose caches the stages free.
     */
    public List<Integer> left(long batchId, int[] sequenceIds, Consumer<Event<R>> events) {
        List<Integer> ended = new ArrayList<>();
        Resident resident = residents.get(batchId);
        for (int id : sequenceIds) {
            ScheduledSequence<R> sequence = active.get(id);
            if (sequence == null || sequence.batchId != batchId || resident == null) {
                continue;
            }
            resident.members.remove(id);
            resident.unreportedRows.remove(id);
            end(sequence, ended);
            cancelled(sequence, events);
        }
        if (resident != null) {
            release(batchId, resident);
        }
        return ended;
    }

    /** A batch whose members all ended frees its slot (the first stage retires it on the same tokens). */
    private void release(long batchId, Resident resident) {
        if (resident.members.isEmpty()) {
            residents.remove(batchId);
        }
    }

    /**
     * A step of {@code batchId} failed somewhere in the pipeline: every member fails (their caches are suspect) and
     * the batch is gone; the owner tells the first stage to forget it. Returns the members' ids.
     */
    public List<Integer> fail(long batchId, String reason, Consumer<Event<R>> events) {
        Resident resident = residents.remove(batchId);
        List<Integer> ended = new ArrayList<>();
        if (resident == null) {
            return ended;
        }
        for (int id : resident.members) {
            ScheduledSequence<R> sequence = active.get(id);
            if (sequence != null) {
                end(sequence, ended);
                if (!sequence.clientTold) {
                    events.accept(new Failed<>(sequence.client, sequence.job.requestId(), reason));
                }
            }
        }
        return ended;
    }

    /**
     * The pipeline is gone (a worker left) and nothing it still reports counts: every admitted sequence goes back to
     * the front of the queue, in admission order and ahead of jobs that never started, to be replayed from the start
     * on the next pipeline ({@link ScheduledSequence#prepareReplay}); cancelled ones finish now (CANCELLED). Nothing
     * is freed on the lost pipeline's stages (the rebuilt pipeline loads afresh). Returns the batches that were resident,
     * whose deadlines the owner drops; their ids are never used again.
     */
    public List<Long> requeueForReplay(Consumer<Event<R>> events) {
        List<Long> gone = new ArrayList<>(residents.keySet());
        residents.clear();
        List<ScheduledSequence<R>> replays = new ArrayList<>();
        long now = clock.getAsLong();
        for (ScheduledSequence<R> sequence : active.values()) {
            if (sequence.cancelled) {
                byRequest.remove(sequence.job.requestId());
                cancelled(sequence, events);
            } else {
                sequence.prepareReplay(now);
                replays.add(sequence);
                replayed++;
            }
        }
        active.clear();
        kvTokensUsed = 0;
        for (int i = replays.size() - 1; i >= 0; i--) {
            waiting.addFirst(replays.get(i));
        }
        return gone;
    }

    /**
     * Fails every waiting job that joined the queue (or went back to it) at or before {@code queuedByNanos} on this
     * scheduler's clock, as {@link FailureKind#UNAVAILABLE}: no pipeline could serve it in time. Returns how many.
     */
    public int expireWaiting(long queuedByNanos, String reason, Consumer<Event<R>> events) {
        int expired = 0;
        for (Iterator<ScheduledSequence<R>> it = waiting.iterator(); it.hasNext(); ) {
            ScheduledSequence<R> sequence = it.next();
            if (sequence.queuedAtNanos - queuedByNanos <= 0) {
                it.remove();
                byRequest.remove(sequence.job.requestId());
                events.accept(new Failed<>(sequence.client, sequence.job.requestId(), reason, FailureKind.UNAVAILABLE));
                expired++;
            }
        }
        return expired;
    }

    /**
     * The limits of a (re)built pipeline. Only while no sequence is admitted (before serving, or after
     * {@link #requeueForReplay}); waiting jobs whose KV caches the new stages could never hold fail.
     *
     * @throws IllegalStateException while sequences are admitted
     */
    public void reconfigure(SchedulerSettings limits, Consumer<Event<R>> events) {
        if (!active.isEmpty()) {
            throw new IllegalStateException(active.size() + " sequences are admitted: requeue them before the limits change");
        }
        this.settings = limits;
        for (Iterator<ScheduledSequence<R>> it = waiting.iterator(); it.hasNext(); ) {
            ScheduledSequence<R> sequence = it.next();
            if (sequence.kvTokens > limits.kvTokens()) {
                it.remove();
                byRequest.remove(sequence.job.requestId());
                events.accept(new Failed<>(sequence.client, sequence.job.requestId(), "the request needs " + sequence.kvTokens
                        + " KV cache positions (prompt + max_tokens), the stages' memory holds " + limits.kvTokens()));
            }
        }
    }

    /** Fails everything waiting or running (the pipeline is gone). */
    public void failAll(String reason, Consumer<Event<R>> events) {
        for (ScheduledSequence<R> sequence : new ArrayList<>(byRequest.values())) {
            if (!sequence.clientTold) {
                events.accept(new Failed<>(sequence.client, sequence.job.requestId(), reason));
            }
        }
        waiting.clear();
        active.clear();
        byRequest.clear();
        residents.clear();
        kvTokensUsed = 0;
    }

    private void end(ScheduledSequence<R> sequence, List<Integer> ended) {
        finish(sequence);
        ended.add(sequence.id);
    }

    private void finish(ScheduledSequence<R> sequence) {
        sequence.batchId = 0;
        if (active.remove(sequence.id) != null) {
            kvTokensUsed -= sequence.kvTokens;
        }
        byRequest.remove(sequence.job.requestId());
    }

    public SchedulerSettings settings() {
        return settings;
    }

    /** Whether {@code batchId} is resident: it has members, so a step of it is out or about to be. */
    public boolean isInFlight(long batchId) {
        return residents.containsKey(batchId);
    }

    public int waitingCount() {
        return waiting.size();
    }

    public int activeCount() {
        return active.size();
    }

    /** Resident micro-batches. */
    public int inFlightCount() {
        return residents.size();
    }

    /** Sequences put back for a replay since this scheduler started (one sequence replayed twice counts twice). */
    public long replayedCount() {
        return replayed;
    }

    /** Jobs resumed from a lost coordinator's since this scheduler started. */
    public long resumedCount() {
        return resumed;
    }
}
