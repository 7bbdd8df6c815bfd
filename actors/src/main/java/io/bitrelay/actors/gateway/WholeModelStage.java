package io.bitrelay.actors.gateway;

import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.worker.StepArena;
import io.bitrelay.runtime.eval.LogSoftmax;
import io.bitrelay.runtime.eval.PromptScoring;
import io.bitrelay.runtime.eval.TokenScore;
import io.bitrelay.runtime.generate.Sampler;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The single-process backend's only stage, first and last at once: computes a step of its resident micro-batch on
 * the whole model and reports what a pipeline's last stage reports (as {@code LastStageSampler.sampleOrScore}): a
 * sampled token per generating sequence, with its score when the job asked for logprobs, or a scored chunk's
 * prompt scores. Each sequence keeps its KV cache and its own {@link Sampler} (its random stream) from its first
 * step until {@link #free}, so a job samples what it samples alone.
 *
 * <p>Not thread-safe: the backend's scheduler thread owns it.
 */
final class WholeModelStage implements AutoCloseable {
    /** Per row of the step: the sequence, its token (−1 for a scored chunk), its scores or null; scores null when none. */
    record Outcome(int[] sequenceIds, int[] tokens, TokenScore[][] scores) {
    }

    private static final class Sequence {
        final KvCache cache;
        Sampler sampler;

        Sequence(KvCache cache) {
            this.cache = cache;
        }
    }

    private final OptModel model;
    private final Map<Integer, Sequence> sequences = new HashMap<>();
    private final StepArena stepArena = new StepArena();

    WholeModelStage(OptModel model) {
        this.model = model;
    }

    /**
     * One forward over every entry of {@code step} (a prompt or a chunk of it, a decoding sequence its last token),
     * then sampling or scoring per entry. A throw leaves the entries' caches suspect: the caller frees them.
     */
    Outcome run(MicroBatch step) {
        MicroBatch.Entry[] entries = step.entries();
        List<SequenceChunk> chunks = new ArrayList<>(entries.length);
        Sequence[] rows = new Sequence[entries.length];
        for (int i = 0; i < entries.length; i++) {
            MicroBatch.Entry entry = entries[i];
            rows[i] = sequences.computeIfAbsent(entry.sequenceId(), id -> new Sequence(model.newCache()));
            if (entry.firstChunkSampling() != null) {
                rows[i].sampler = new Sampler(entry.firstChunkSampling());
            }
            if (entry.startPosition() != rows[i].cache.length()) {
                throw new IllegalStateException("sequence " + entry.sequenceId() + " continues at position "
                        + entry.startPosition() + ", its cache holds " + rows[i].cache.length());
            }
            chunks.add(new SequenceChunk(entry.tokens(), rows[i].cache));
        }
        try (Arena arena = stepArena) {
            MemorySegment hidden = model.embed(chunks, arena);
            model.runLayers(chunks, hidden, arena);
            return sampleOrScore(entries, rows, hidden, arena);
        }
    }

    private Outcome sampleOrScore(MicroBatch.Entry[] entries, Sequence[] rows, MemorySegment hidden, Arena arena) {
        int[] sequenceIds = new int[entries.length];
        int[] tokens = new int[entries.length];
        TokenScore[][] scores = new TokenScore[entries.length][];
        boolean anyScores = false;
        int[] sampled = new int[entries.length];
        int[] lastRows = new int[entries.length];
        int sampledCount = 0;
        int row = 0;
        for (int i = 0; i < entries.length; i++) {
            MicroBatch.Entry entry = entries[i];
            sequenceIds[i] = entry.sequenceId();
            if (entry.targets() != null) {
                scores[i] = PromptScoring.score(model, hidden, row, entry.targets(), entry.logprobs());
                tokens[i] = -1;
                anyScores = true;
            } else if (entry.partialPrompt()) {
                tokens[i] = -1; // a prompt chunk that goes on: its sampler draws with the last chunk
            } else {
                lastRows[sampledCount] = row + entry.tokens().length - 1;
                sampled[sampledCount++] = i;
            }
            row += entry.tokens().length;
        }
        if (sampledCount > 0) {
            float[][] logits = model.logits(hidden, java.util.Arrays.copyOf(lastRows, sampledCount), arena);
            for (int j = 0; j < sampledCount; j++) {
                int i = sampled[j];
                tokens[i] = rows[i].sampler.next(logits[j]);
                if (entries[i].logprobs() >= 0) {
                    scores[i] = new TokenScore[]{LogSoftmax.score(logits[j], tokens[i], entries[i].logprobs())};
                    anyScores = true;
                }
            }
        }
        return new Outcome(sequenceIds, tokens, anyScores ? scores : null);
    }

    /** Closes the caches of sequences that ended; ids it never saw (a job cancelled before its first step) are skipped. */
    void free(List<Integer> sequenceIds) {
        for (int id : sequenceIds) {
            Sequence sequence = sequences.remove(id);
            if (sequence != null) {
                sequence.cache.close();
            }
        }
    }

    /** Sequences holding a KV cache. */
    int cachedCount() {
        return sequences.size();
    }

    @Override
    public void close() {
        for (Sequence sequence : sequences.values()) {
            sequence.cache.close();
        }
        sequences.clear();
        stepArena.release();
    }
}
