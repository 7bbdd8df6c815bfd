package io.bitrelay.actors.worker;

import io.bitrelay.runtime.model.opt.OptModel;

/**
 * A stage's models on the host: the weights as loaded, the FP32 stage built on them, and the stage that serves.
 * Embeddings, prompt scoring, the CPU's LM head and (on a CPU stage) the layers come from {@link #serving()}; a GPU
 * stage's layers were uploaded from it. Owns them all: {@link #close()} frees the serving stage, then the loaded
 * weights, so it goes after whatever was built from them.
 */
final class StageModels implements AutoCloseable {
    /** The stage's weights as loaded from the checkpoint; owns them, closed last. */
    private final OptModel loaded;
    /**
     * The FP32 stage with the assignment's KV cache precision: recipe calibration runs on it, and every
     * quantized stage is built from it (and so keeps that precision). A view of {@link #loaded}.
     */
    private final OptModel base;
    /** What serves: {@code base}, or the quantized stage built from it (restored, or from a plan); compute thread only. */
    private OptModel serving;

    StageModels(OptModel loaded, OptModel base, OptModel serving) {
        this.loaded = loaded;
        this.base = base;
        this.serving = serving;
    }

    OptModel base() {
        return base;
    }

    OptModel serving() {
        return serving;
    }

    /** True when a quantized stage serves instead of the FP32 one. */
    boolean quantized() {
        return serving != base;
    }

    /** {@code quantized} (built from {@link #base()}) serves from now on; the quantized stage it replaces is freed. */
    void serve(OptModel quantized) {
        if (serving != base) {
            serving.close();
        }
        serving = quantized;
    }

    @Override
    public void close() {
        if (serving != base) {
            serving.close();
        }
        loaded.close();
    }
}
