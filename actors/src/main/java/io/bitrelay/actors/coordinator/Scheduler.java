package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.pipeline.MicroBatch;


import java.util.ArrayDeque;
import io.bitrelay.runtime.eval.PromptScoring;
import io.bitrelay.runtime.eval.TokenScore;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Continuous batching, free of actors so it can be tested alone. Jobs wait in arrival order until a
 * sequence slot frees; between steps, sequences that are not in flight are grouped into micro-batches —
 * new ones with their whole prompt, running ones with their last token — spread evenly over the idle
 * micro-batch slots so every pipeline stage has work. A sequence is in at most one batch at a time,
 * since its next token depends on the last. A job that scores its prompt goes through in chunks of at most
 * {@code maxBatchTokens} tokens, each carrying the prompt tokens its rows predict; it samples nothing and
 * ends (MAX_TOKENS) when its last chunk's scores are back.
 *
 * @param <R> whatever the owner uses to reach a job's client (an actor reference in the coordinator)
 */
public final class Scheduler<R> {
    private final SchedulerSettings settings;
    private final int eosTokenId;
    private final ArrayDeque<Sequence<R>> waiting = new ArrayDeque<>();
    private final Map<Integer, Sequence<R>> active = new LinkedHashMap<>();
    private final Map<String, Sequence<R>> byRequest = new HashMap<>();
    private final Map<Long, MicroBatch> inFlight = new LinkedHashMap<>();
    private int nextSequenceId = 1;
    private long nextBatchId = 1;
    private int step;

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

    public record Failed<R>(R client, String requestId, String reason) implements Event<R> {
    }

    private static final class Sequence<R> {
        final int id;
        final GenerationJob job;
        final R client;
        int[] pendingInput;
        int inFlightLength;
        int position;
        int generated;
        boolean inFlight;
        boolean cancelled;
        boolean started;

        Sequence(int id, GenerationJob job, R client) {
            this.id = id;
            this.job = job;
            this.client = client;
            this.pendingInput = job.promptTokens();
        }
    }

    public Scheduler(SchedulerSettings settings, int eosTokenId) {
        this.settings = settings;
        this.eosTokenId = eosTokenId;
    }

    public void submit(GenerationJob job, R client) {
        if (byRequest.containsKey(job.requestId())) {
            throw new IllegalArgumentException("request id " + job.requestId() + " is already in use");
        }
        Sequence<R> sequence = new Sequence<>(nextSequenceId++, job, client);
        waiting.add(sequence);
        byRequest.put(job.requestId(), sequence);
    }

    /**
     * Cancels a job. A waiting or idle sequence finishes now (the event goes to {@code events}); one in
     * flight finishes when its step returns. Returns the sequence id whose caches the stages must free, or -1.
     */
    public int cancel(String requestId, Consumer<Event<R>> events) {
        Sequence<R> sequence = byRequest.get(requestId);
        if (sequence == null) {
            return -1;
        }
        if (waiting.remove(sequence)) {
            byRequest.remove(requestId);
            events.accept(new Finished<>(sequence.client, requestId, FinishReason.CANCELLED));
            return -1;
        }
        if (sequence.inFlight) {
            sequence.cancelled = true;
            return -1;
        }
        finish(sequence);
        events.accept(new Finished<>(sequence.client, requestId, FinishReason.CANCELLED));
        return sequence.id;
    }

    /** Forms as many micro-batches as there are idle slots and runnable sequences; marks them in flight. */
    public List<MicroBatch> dispatch() {
        List<MicroBatch> batches = new ArrayList<>();
        int idleSlots = settings.microBatches() - inFlight.size();
        if (idleSlots <= 0) {
            return batches;
        }
        while (!waiting.isEmpty() && active.size() < settings.maxActiveSequences()) {
            Sequence<R> admitted = waiting.poll();
            active.put(admitted.id, admitted);
        }
        List<Sequence<R>> runnable = new ArrayList<>();
        for (Sequence<R> sequence : active.values()) {
            if (!sequence.inFlight) {
                runnable.add(sequence);
            }
        }
        int perBatch = Math.min(settings.maxBatchSequences(), (runnable.size() + idleSlots - 1) / Math.max(1, idleSlots));
        int index = 0;
        while (index < runnable.size() && batches.size() < idleSlots) {
            List<MicroBatch.Entry> entries = new ArrayList<>();
            int tokens = 0;
            while (index < runnable.size() && entries.size() < perBatch) {
                Sequence<R> sequence = runnable.get(index);
                boolean scoring = sequence.job.scorePrompt();
                int length = scoring
                        ? Math.min(sequence.pendingInput.length, settings.maxBatchTokens() - (entries.isEmpty() ? 0 : tokens))
                        : sequence.pendingInput.length;
                if (!entries.isEmpty() && (length <= 0 || tokens + length > settings.maxBatchTokens())) {
                    break;
                }
                entries.add(scoring ? scoredChunk(sequence, length)
                        : new MicroBatch.Entry(sequence.id, sequence.pendingInput, sequence.position,
                                sequence.started ? null : sequence.job.sampling(), sequence.job.logprobs(), null));
                sequence.inFlightLength = length;
                sequence.inFlight = true;
                sequence.started = true;
                tokens += length;
                index++;
            }
            MicroBatch batch = new MicroBatch(nextBatchId++, step++, entries.toArray(MicroBatch.Entry[]::new), false);
            inFlight.put(batch.batchId(), batch);
            batches.add(batch);
        }
        return batches;
    }

    /** The next {@code length} prompt tokens of a scoring sequence, each with the token it predicts. */
    private MicroBatch.Entry scoredChunk(Sequence<R> sequence, int length) {
        int[] prompt = sequence.job.promptTokens();
        return new MicroBatch.Entry(sequence.id, Arrays.copyOf(sequence.pendingInput, length), sequence.position, null,
                sequence.job.logprobs(), PromptScoring.nextTokenTargets(prompt, sequence.position, length));
    }

    /** {@link #complete(long, int[], int[], TokenScore[][], Consumer)} of a step without scores. */
    public List<Integer> complete(long batchId, int[] sequenceIds, int[] tokens, Consumer<Event<R>> events) {
        return complete(batchId, sequenceIds, tokens, null, events);
    }

    /**
     * Applies the tokens a step sampled and the scores it computed. Returns the ids of sequences that ended
     * (the stages free their caches).
     *
     * @param scores per sequence: a scoring chunk's prompt scores, a sampled token's score (one element) when
     *               the job asked for logprobs, or null; the whole array may be null when there are none
     * @throws IllegalArgumentException for an unknown batch or sequence (a step reported twice)
     */
    public List<Integer> complete(long batchId, int[] sequenceIds, int[] tokens, TokenScore[][] scores,
                                  Consumer<Event<R>> events) {
        MicroBatch batch = inFlight.remove(batchId);
        if (batch == null) {
            throw new IllegalArgumentException("step result for unknown micro-batch " + batchId);
        }
        if (sequenceIds.length != batch.entries().length || tokens.length != sequenceIds.length) {
            throw new IllegalArgumentException("micro-batch " + batchId + " had " + batch.entries().length
                    + " sequences, the result names " + sequenceIds.length);
        }
        List<Integer> ended = new ArrayList<>();
        for (int i = 0; i < sequenceIds.length; i++) {
            Sequence<R> sequence = active.get(sequenceIds[i]);
            if (sequence == null) {
                throw new IllegalArgumentException("micro-batch " + batchId + " names unknown sequence " + sequenceIds[i]);
            }
            sequence.inFlight = false;
            sequence.position += sequence.inFlightLength;
            String requestId = sequence.job.requestId();
            if (sequence.cancelled) {
                end(sequence, ended);
                events.accept(new Finished<>(sequence.client, requestId, FinishReason.CANCELLED));
                continue;
            }
            TokenScore[] sequenceScores = scores == null ? null : scores[i];
            if (sequence.job.scorePrompt()) {
                if (sequenceScores == null) {
                    end(sequence, ended);
                    events.accept(new Failed<>(sequence.client, requestId, "the last stage returned no scores for a scored chunk"));
                    continue;
                }
                events.accept(new PromptScores<>(sequence.client, requestId, sequenceScores));
                int[] prompt = sequence.job.promptTokens();
                if (sequence.position >= prompt.length) {
                    end(sequence, ended);
                    events.accept(new Finished<>(sequence.client, requestId, FinishReason.MAX_TOKENS));
                } else {
                    sequence.pendingInput = Arrays.copyOfRange(prompt, sequence.position, prompt.length);
                }
                continue;
            }
            int token = tokens[i];
            sequence.generated++;
            if (sequence.job.endsWithEos(token, sequence.generated, eosTokenId)) {
                end(sequence, ended);
                events.accept(new Finished<>(sequence.client, requestId, FinishReason.EOS));
                continue;
            }
            events.accept(new Token<>(sequence.client, requestId, token,
                    sequenceScores != null && sequenceScores.length == 1 ? sequenceScores[0] : null));
            if (sequence.generated >= sequence.job.maxNewTokens()) {
                end(sequence, ended);
                events.accept(new Finished<>(sequence.client, requestId, FinishReason.MAX_TOKENS));
            } else {
                sequence.pendingInput = new int[]{token};
            }
        }
        return ended;
    }

    /** A step failed somewhere in the pipeline: its sequences fail (their caches are suspect). Returns their ids. */
    public List<Integer> fail(long batchId, String reason, Consumer<Event<R>> events) {
        MicroBatch batch = inFlight.remove(batchId);
        List<Integer> ended = new ArrayList<>();
        if (batch == null) {
            return ended;
        }
        for (MicroBatch.Entry entry : batch.entries()) {
            Sequence<R> sequence = active.get(entry.sequenceId());
            if (sequence != null) {
                end(sequence, ended);
                events.accept(new Failed<>(sequence.client, sequence.job.requestId(), reason));
            }
        }
        return ended;
    }

    /** Fails everything waiting or running (the pipeline is gone). */
    public void failAll(String reason, Consumer<Event<R>> events) {
        for (Sequence<R> sequence : new ArrayList<>(byRequest.values())) {
            events.accept(new Failed<>(sequence.client, sequence.job.requestId(), reason));
        }
        waiting.clear();
        active.clear();
        byRequest.clear();
        inFlight.clear();
    }

    private void end(Sequence<R> sequence, List<Integer> ended) {
        finish(sequence);
        ended.add(sequence.id);
    }

    private void finish(Sequence<R> sequence) {
        active.remove(sequence.id);
        byRequest.remove(sequence.job.requestId());
    }

    /** Hands every job still waiting for admission, in order, to {@code sink} (a rebuilt pipeline's scheduler). */
    public void drainWaiting(java.util.function.BiConsumer<GenerationJob, R> sink) {
        while (!waiting.isEmpty()) {
            Sequence<R> sequence = waiting.poll();
            byRequest.remove(sequence.job.requestId());
            sink.accept(sequence.job, sequence.client);
        }
    }

    public SchedulerSettings settings() {
        return settings;
    }

    public boolean isInFlight(long batchId) {
        return inFlight.containsKey(batchId);
    }

    public int waitingCount() {
        return waiting.size();
    }

    public int activeCount() {
        return active.size();
    }

    public int inFlightCount() {
        return inFlight.size();
    }
}
