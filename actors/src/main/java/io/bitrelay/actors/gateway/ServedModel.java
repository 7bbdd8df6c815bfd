package io.bitrelay.actors.gateway;

import io.bitrelay.runtime.model.opt.OptConfig;

/**
 * The model the gateway serves, as /v1/models lists it and as requests may name it.
 *
 * @param id            the name clients pass as {@code model} (e.g. "opt-1.3b")
 * @param contextLength positions the model can attend to: prompt + max_tokens must fit
 */
public record ServedModel(String id, int contextLength) {
    public ServedModel {
        if (id == null || id.isBlank()) {
            throw new IllegalArgumentException("the served model needs a name");
        }
        if (contextLength < 2) {
            throw new IllegalArgumentException("contextLength must be >= 2, got " + contextLength);
        }
    }

    public static ServedModel of(String id, OptConfig config) {
        return new ServedModel(id, config.maxPositions());
    }
}
