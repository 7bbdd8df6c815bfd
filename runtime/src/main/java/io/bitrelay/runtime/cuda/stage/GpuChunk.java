package io.bitrelay.runtime.cuda.stage;

/**
 * The rows one sequence contributes to a GPU stage step: {@code tokens} consecutive rows of the step's hidden
 * states (a prefill chunk, or 1 for a decode step), taking positions {@code sequence.length()} onwards.
 */
public record GpuChunk(GpuSequence sequence, int tokens) {
    public GpuChunk {
        if (sequence == null) {
            throw new IllegalArgumentException("chunk without a sequence");
        }
        if (tokens <= 0) {
            throw new IllegalArgumentException("chunk of " + tokens + " tokens");
        }
    }
}
