package io.bitrelay.runtime.eval;

import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.ops.cpu.CpuParallelism;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Scores a run of prompt rows on the stage that owns the LM head: for each row that has a target (the
 * prompt's next token), the target's log-probability and the top alternatives. Logits are materialised a
 * block of rows at a time and reduced to {@link TokenScore}s at once, so a 1024-token prompt over a 50k
 * vocabulary never holds more than one block (13 MB) of logits, and nothing but the scores leaves.
 */
public final class PromptScoring {
    /** Logit rows materialised at once: 64 × a 50k vocabulary is 13 MB, not the 200 MB of a whole window. */
    static final int LOGIT_ROWS_PER_BLOCK = 64;

    private PromptScoring() {
    }

    /**
     * Scores a whole prompt on a whole model from an empty cache: one score per prompt token after the
     * first (log p(prompt[t + 1] | prompt[0..t])), in order.
     */
    public static TokenScore[] scoreWhole(OptModel model, int[] prompt, int top) {
        try (Arena step = Arena.ofShared(); KvCache cache = model.newCache()) {
            List<SequenceChunk> chunks = List.of(new SequenceChunk(prompt, cache));
            MemorySegment hidden = model.embed(chunks, step);
            model.runLayers(chunks, hidden, step);
            return score(model, hidden, 0, nextTokenTargets(prompt, 0, prompt.length), top);
        }
    }

    /**
     * @param hidden   the last layer's output, (rows, hidden), of which rows [firstRow, firstRow + targets.length)
     *                 are this prompt's
     * @param targets  per row the token it predicts, or −1 for a row not to score (the prompt's last position)
     * @param top      alternatives wanted per position (0: just the target's log-probability)
     * @return one score per row with a target, in row order
     */
    public static TokenScore[] score(OptModel model, MemorySegment hidden, int firstRow, int[] targets, int top) {
        int[] rows = new int[targets.length];
        int scored = 0;
        for (int r = 0; r < targets.length; r++) {
            if (targets[r] >= 0) {
                rows[scored++] = firstRow + r;
            }
        }
        int[] targetOfScored = new int[scored];
        for (int r = 0, i = 0; r < targets.length; r++) {
            if (targets[r] >= 0) {
                targetOfScored[i++] = targets[r];
            }
        }
        TokenScore[] scores = new TokenScore[scored];
        for (int first = 0; first < scored; first += LOGIT_ROWS_PER_BLOCK) {
            int count = Math.min(LOGIT_ROWS_PER_BLOCK, scored - first);
            int[] block = java.util.Arrays.copyOfRange(rows, first, first + count);
            float[][] logits;
            try (Arena step = Arena.ofShared()) {
                logits = model.logits(hidden, block, step);
            }
            int offset = first;
            CpuParallelism.forEach(count, r -> scores[offset + r] = LogSoftmax.score(logits[r], targetOfScored[offset + r], top));
        }
        return scores;
    }

    /** The targets of a whole prompt scored from its first token: token t + 1 for row t, none for the last row. */
    public static int[] nextTokenTargets(int[] prompt, int start, int length) {
        int[] targets = new int[length];
        for (int r = 0; r < length; r++) {
            int next = start + r + 1;
            targets[r] = next < prompt.length ? prompt[next] : -1;
        }
        return targets;
    }
}
