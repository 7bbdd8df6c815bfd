package io.bitrelay.actors.gateway;

import io.bitrelay.runtime.model.opt.OptConfig;

/**
 * The model the gateway serves, as /v1/models lists it and as requests may name it.
 *
 * @param id            the name clients pass as {@code model} (e.g. "opt-1.3b")
 * @param contextLength positions the model can attend to: prompt + max_tokens must fit
 * @param vocabSize     token ids a prompt given as ids may use: [0, vocabSize)
 */
public record ServedModel(String id, int contextLength, int vocabSize) {
    public ServedModel {
        if (id == null || id.isBlank()) {
            throw new IllegalArgumentException("the served model needs a name");
        }
        if (contextLength < 2) {
            throw new IllegalArgumentException("contextLength must be >= 2, got " + contextLength);
        }
        if (vocabSize < 1) {
            throw new IllegalArgumentException("vocabSize must be >= 1, got " + vocabSize);
        }
    }

    public static ServedModel of(String id, OptConfig config) {
        return new ServedModel(id, config.maxPositions(), config.vocabSize());
    }
}
