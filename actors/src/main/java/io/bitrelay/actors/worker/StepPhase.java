package io.bitrelay.actors.worker;

import java.util.Locale;

/**
 * Where a stage's time for one micro-batch goes, in the order a step passes through them. Host wall-clock: on a GPU
 * stage the kernels run asynchronously, so the device's layer time lands in the first phase that waits for it (the
 * LM head on the last stage, the frame encode on the others).
 */
public enum StepPhase {
    /** Arrival (a RunStep, or a frame off the link) until the stage's compute thread takes it up. */
    QUEUE,
    /** Embedding the first stage's tokens, or validating and decoding an inbound frame; onto the device if any. */
    INPUT,
    /** The stage's decoder layers (on a GPU stage: queuing them). */
    LAYERS,
    /** Final LayerNorm and LM head, and bringing logits (or sampled ids) to the host. */
    HEAD,
    /** Sampling and prompt scoring on the host. */
    SAMPLE,
    /** Encoding and sending the outbound frame, or reporting the step's tokens to the coordinator. */
    OUTPUT;

    /** The {@code phase} label in /metrics. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
