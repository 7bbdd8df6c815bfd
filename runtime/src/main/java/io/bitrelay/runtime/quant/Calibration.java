package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.eval.ProgressBar;
import io.bitrelay.runtime.eval.TokenWindows;
import io.bitrelay.runtime.model.opt.ActivationObserver;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Runs calibration sequences through the FP32 model with a {@link CalibrationCollector} attached and
 * returns the activation ranges every recipe starts from. The sequences are consecutive non-overlapping
 * windows of a tokenized text (SmoothQuant calibrates on 512 sequences of 512 tokens; 128 × 512 is the
 * default here). Only the decoder layers run: the LM head has no quantization point and is the costliest
 * single matmul of a small model.
 */
public final class Calibration {
    public static final int DEFAULT_SEQUENCES = 128;
    public static final int DEFAULT_SEQ_LEN = 512;

    private Calibration() {
    }

    /** Calibrates on up to {@code sequences} windows of {@code seqLen} tokens, with a progress bar on stderr. */
    public static CalibrationStats run(OptModel model, int[] tokens, int sequences, int seqLen) {
        return run(model, tokens, sequences, seqLen, "tokens", ProgressBar.stderr("calibrate", "sequences"));
    }

    /**
     * @param tokens     the tokenized calibration text
     * @param sequences  windows wanted; fewer are used when the text is shorter (the result's source says how many)
     * @param textName   recorded in the statistics' source
     */
    public static CalibrationStats run(OptModel model, int[] tokens, int sequences, int seqLen, String textName,
                                       Progress progress) {
        return run(model, tokens, sequences, seqLen, textName, progress, null);
    }

    /**
     * As {@link #run(OptModel, int[], int, int, String, Progress)}, with {@code alsoObserving} (when not null)
     * seeing the same activations, e.g. a {@link HessianCollector} for GPTQ recipes.
     */
    public static CalibrationStats run(OptModel model, int[] tokens, int sequences, int seqLen, String textName,
                                       Progress progress, ActivationObserver alsoObserving) {
        return run(model, tokens, sequences, seqLen, textName, progress, alsoObserving, RangeEstimator.DEFAULT);
    }

    /**
     * As {@link #run(OptModel, int[], int, int, String, Progress, ActivationObserver)}, with each channel's range
     * estimated as {@code ranges} says (each sequence is one batch of {@link RangeEstimator#BATCH_MEAN}).
     */
    public static CalibrationStats run(OptModel model, int[] tokens, int sequences, int seqLen, String textName,
                                       Progress progress, ActivationObserver alsoObserving, RangeEstimator ranges) {
        if (!model.range().ownsEmbeddings()) {
            throw new IllegalArgumentException("calibration starts from the embeddings; this model holds " + model.range());
        }
        if (seqLen > model.config().maxPositions()) {
            throw new IllegalArgumentException("calibration sequences of " + seqLen + " tokens exceed the model's context of "
                    + model.config().maxPositions());
        }
        if (sequences <= 0) {
            throw new IllegalArgumentException("calibration needs at least one sequence, got " + sequences);
        }
        List<int[]> windows = TokenWindows.split(tokens, seqLen, sequences);
        if (windows.isEmpty()) {
            throw new IllegalArgumentException("calibration text has " + tokens.length + " tokens, fewer than one sequence of "
                    + seqLen);
        }
        CalibrationCollector collector = new CalibrationCollector(ranges);
        ActivationObserver observer = alsoObserving == null ? collector : collector.andThen(alsoObserving);
        try {
            for (int i = 0; i < windows.size(); i++) {
                try (Arena step = Arena.ofShared(); KvCache cache = model.newCache()) {
                    List<SequenceChunk> chunks = List.of(new SequenceChunk(windows.get(i), cache));
                    MemorySegment hidden = model.embed(chunks, step);
                    model.runLayers(chunks, hidden, step, observer);
                }
                progress.update(i + 1, windows.size());
            }
        } finally {
            progress.finish();
        }
        String shape = "OPT, " + model.config().numLayers() + " layers, hidden " + model.config().hiddenSize();
        return collector.stats(new CalibrationStats.Source(shape, textName, windows.size(), seqLen));
    }
}
