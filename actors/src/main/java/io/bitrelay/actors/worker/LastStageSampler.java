package io.bitrelay.actors.worker;

import io.bitrelay.runtime.eval.LogSoftmax;
import io.bitrelay.runtime.eval.PromptScoring;
import io.bitrelay.runtime.eval.TokenScore;
import io.bitrelay.runtime.generate.SamplingRows;
import io.bitrelay.runtime.wire.BatchLayout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The last stage's end of a step: each sequence's next token, or its prompt's scores, from the step's rows. Keeps
 * each sequence's {@link SequenceSampling} from its first chunk on; logits and device sampling come from the
 * stage's {@link StageBackend}. Compute thread only.
 */
final class LastStageSampler {
    private final StageBackend backend;
    private final StageModels models;
    private final StepClock clock;
    private final int maxBatchTokens;
    private final Map<Integer, SequenceSampling> samplings = new HashMap<>();
    /** The device-sampled rows of a step: parameters in, tokens out; made at the first such step, then reused. */
    private SamplingRows deviceRows;
    private int[] deviceTokens;

    LastStageSampler(StageBackend backend, StageModels models, StepClock clock, int maxBatchTokens) {
        this.backend = backend;
        this.models = models;
        this.clock = clock;
        this.maxBatchTokens = maxBatchTokens;
    }

    /** What the last stage reports for one micro-batch; {@code scores} stays null when no sequence asked for any. */
    record StepOutcome(int[] sequenceIds, int[] tokens, TokenScore[][] scores) {
    }

    /**
     * Per sequence: a scored prompt chunk gets the log-probability of each row's next prompt token (and
     * top alternatives), computed here and never leaving as logits; any other sequence samples its next
     * token from its last row (with that token's score when it asked for logprobs).
     *
     * @param stepRows the step's rows as the backend's layers left them (host rows, or on the device)
     */
    StepOutcome sampleOrScore(BatchLayout layout, MemorySegment stepRows, Arena step) {
        return sampleOrScore(layout, walk(layout.entries()), stepRows, step);
    }

    private StepOutcome sampleOrScore(BatchLayout layout, SampledRows sampled, MemorySegment stepRows, Arena step) {
        MemorySegment hidden = backend.headRows(layout, stepRows, step);
        clock.lap(StepPhase.HEAD); // rows brought from the device for the CPU's head: waiting for its layers counts here
        List<BatchLayout.Entry> entries = layout.entries();
        int[] tokens = new int[entries.size()];
        java.util.Arrays.fill(tokens, -1); // a scored or partial prompt chunk samples nothing
        TokenScore[][] scores = new TokenScore[entries.size()][];
        boolean anyScores = false;
        int row = 0;
        for (int i = 0; i < entries.size(); i++) {
            BatchLayout.Entry entry = entries.get(i);
            if (entry.scoresPrompt()) {
                scores[i] = PromptScoring.score(models.serving(), hidden, row, entry.targets(), entry.logprobs());
                anyScores = true;
            }
            row += entry.tokenCount();
        }
        int[] sampledEntries = sampled.entries();
        if (sampledEntries.length > 0) {
            if (backend.samplesOnDevice(layout)) {
                backend.sample(sampled.lastRows(), deviceRowsFor(entries, sampledEntries), deviceTokens);
                clock.lap(StepPhase.HEAD);
                for (int j = 0; j < sampledEntries.length; j++) {
                    tokens[sampledEntries[j]] = deviceTokens[j];
                }
            } else {
                float[][] logits = backend.logits(layout, hidden, sampled.lastRows(), step);
                clock.lap(StepPhase.HEAD);
                for (int j = 0; j < sampledEntries.length; j++) {
                    int i = sampledEntries[j];
                    BatchLayout.Entry entry = entries.get(i);
                    tokens[i] = samplingFor(entry).next(logits[j]);
                    if (entry.logprobs() >= 0) {
                        scores[i] = new TokenScore[]{LogSoftmax.score(logits[j], tokens[i], entry.logprobs())};
                        anyScores = true;
                    }
                }
            }
        }
        clock.lap(StepPhase.SAMPLE);
        return new StepOutcome(sampled.sequenceIds(), tokens, anyScores ? scores : null);
    }

    /**
     * A step's entries walked once: every entry's sequence id, and the entries that sample a token now (neither a
     * scored nor a partial prompt chunk) with their last rows. A partial chunk's sampler starts with its first chunk;
     * its first draw comes with the last.
     */
    private record SampledRows(int[] sequenceIds, int[] entries, int[] lastRows) {
    }

    private SampledRows walk(List<BatchLayout.Entry> entries) {
        int[] sequenceIds = new int[entries.size()];
        int[] sampledEntries = new int[entries.size()];
        int[] lastRows = new int[entries.size()];
        int count = 0;
        int row = 0;
        for (int i = 0; i < entries.size(); i++) {
            BatchLayout.Entry entry = entries.get(i);
            sequenceIds[i] = entry.sequenceId();
            if (entry.partialPrompt()) {
                if (entry.hasSampling()) {
                    samplingFor(entry);
                }
            } else if (!entry.scoresPrompt()) {
                sampledEntries[count] = i;
                lastRows[count++] = row + entry.tokenCount() - 1;
            }
            row += entry.tokenCount();
        }
        return new SampledRows(sequenceIds, java.util.Arrays.copyOf(sampledEntries, count),
                java.util.Arrays.copyOf(lastRows, count));
    }

    /** The device sampling parameters of {@code sampledEntries}, in the reused buffers. */
    private SamplingRows deviceRowsFor(List<BatchLayout.Entry> entries, int[] sampledEntries) {
        ensureDeviceRows();
        deviceRows.clear();
        for (int i : sampledEntries) {
            SequenceSampling sampling = samplingFor(entries.get(i));
            deviceRows.add(sampling.params(), sampling.drawOnDevice());
        }
        return deviceRows;
    }

    /**
     * A step's outcome as the last stage leaves it: {@link #ready} at once, or still being sampled on the device
     * ({@link #queue}), its tokens there for the next step's embeddings until {@link #collect} brings them.
     */
    static final class Queued {
        private final StepOutcome ready;
        private final StageBackend.SampledAhead pass;
        private final int[] sequenceIds;
        /** Per token of the pass: the entry it belongs to. */
        private final int[] sampledEntries;

        private Queued(StepOutcome ready, StageBackend.SampledAhead pass, int[] sequenceIds, int[] sampledEntries) {
            this.ready = ready;
            this.pass = pass;
            this.sequenceIds = sequenceIds;
            this.sampledEntries = sampledEntries;
        }

        /** Whether the tokens are still on the device. */
        boolean onDevice() {
            return pass != null;
        }

        /** The pass the next step's fed rows read. */
        StageBackend.SampledAhead pass() {
            return pass;
        }

        /** The index among the pass's tokens of {@code sequenceId}'s, looked for from {@code from} on (wrapping); −1: none. */
        int tokenIndex(int sequenceId, int from) {
            int n = sampledEntries.length;
            for (int k = 0; k < n; k++) {
                int j = (from + k) % n;
                if (sequenceIds[sampledEntries[j]] == sequenceId) {
                    return j;
                }
            }
            return -1;
        }
    }

    /**
     * Queues the step's sampling on the device and returns at once when every sampled row can be (the backend runs
     * steps ahead, samples this layout on the device, and the rows fit one pass); otherwise samples or scores now
     * ({@link #sampleOrScore}) and returns the outcome ready.
     */
    Queued queue(BatchLayout layout, MemorySegment stepRows, Arena step) {
        SampledRows sampled = walk(layout.entries());
        int count = sampled.entries().length;
        if (count == 0 || count > backend.maxSampledAhead() || !backend.samplesOnDevice(layout)) {
            return new Queued(sampleOrScore(layout, sampled, stepRows, step), null, null, null);
        }
        backend.headRows(layout, stepRows, step); // on the device: nothing to copy
        clock.lap(StepPhase.HEAD);
        StageBackend.SampledAhead pass = backend.sampleAhead(sampled.lastRows(),
                deviceRowsFor(layout.entries(), sampled.entries()));
        clock.lap(StepPhase.HEAD);
        return new Queued(null, pass, sampled.sequenceIds(), sampled.entries());
    }

    /** The outcome of a queued step: at once when it was ready, else once the device's tokens reach the host. */
    StepOutcome collect(Queued queued) {
        if (queued.ready != null) {
            return queued.ready;
        }
        ensureDeviceRows();
        backend.awaitSampled(queued.pass, deviceTokens);
        int[] tokens = new int[queued.sequenceIds.length];
        java.util.Arrays.fill(tokens, -1);
        for (int j = 0; j < queued.sampledEntries.length; j++) {
            tokens[queued.sampledEntries[j]] = deviceTokens[j];
        }
        return new StepOutcome(queued.sequenceIds, tokens, null);
    }

    private void ensureDeviceRows() {
        if (deviceRows == null) {
            deviceRows = new SamplingRows(maxBatchTokens);
            deviceTokens = new int[maxBatchTokens];
        }
    }

    private SequenceSampling samplingFor(BatchLayout.Entry entry) {
        if (entry.sampling() != null) {
            samplings.put(entry.sequenceId(), new SequenceSampling(entry.sampling()));
        }
        SequenceSampling sampling = samplings.get(entry.sequenceId());
        if (sampling == null) {
            throw new IllegalStateException("no sampling parameters for sequence " + entry.sequenceId());
        }
        return sampling;
    }

    /** The sequence ended: its sampler goes. */
    void forget(int sequenceId) {
        samplings.remove(sequenceId);
    }
}
