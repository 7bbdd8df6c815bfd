package io.bitrelay.runtime.model.opt;

import java.lang.foreign.MemorySegment;

/**
 * Sees the activations at every {@link ActivationSite} of a forward step, e.g. to collect calibration
 * statistics. The model passes a null observer on the serving path, which costs one null check per site.
 * Calls come from the thread running the step, layer after layer; {@code rows} is only valid during the call.
 */
@FunctionalInterface
public interface ActivationObserver {

    /**
     * @param layer global decoder layer index (not the stage-local one)
     * @param rows  (rowCount, width) FP32: through {@link OptModel#runLayers}, one chunk's rows (a sequence's part
     *              of the step), each chunk a call of its own
     */
    void observe(int layer, ActivationSite site, MemorySegment rows, int rowCount, int width);

    /** This observer, then {@code next}, on every call. */
    default ActivationObserver andThen(ActivationObserver next) {
        return (layer, site, rows, rowCount, width) -> {
            observe(layer, site, rows, rowCount, width);
            next.observe(layer, site, rows, rowCount, width);
        };
    }
}
