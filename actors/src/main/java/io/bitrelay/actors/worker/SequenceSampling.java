package io.bitrelay.actors.worker;

import io.bitrelay.runtime.generate.Sampler;
import io.bitrelay.runtime.generate.SamplingParams;

/**
 * How one sequence picks its tokens on the last stage: its host {@link Sampler} (its own random stream), and the
 * count of tokens the device drew for it, which with the seed names the device's next draw.
 */
final class SequenceSampling {
    private final SamplingParams params;
    private final Sampler host;
    private long deviceDraws;

    SequenceSampling(SamplingParams params) {
        this.params = params;
        this.host = new Sampler(params);
    }

    SamplingParams params() {
        return params;
    }

    /** The next token from {@code logits} on the host. */
    int next(float[] logits) {
        return host.next(logits);
    }

    /** The counter of the device's next draw for this sequence; counts it. */
    long drawOnDevice() {
        return deviceDraws++;
    }
}
