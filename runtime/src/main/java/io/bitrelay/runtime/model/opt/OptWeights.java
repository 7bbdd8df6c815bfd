package io.bitrelay.runtime.model.opt;

import java.lang.foreign.MemorySegment;

/**
 * The FP32 weights one stage holds.
 *
 * @param tokenEmbeddings    (vocab, wordEmbedProjDim); on the first stage, and on the last as the tied LM head
 * @param positionEmbeddings (maxPositions + 2, hidden); first stage only
 * @param projectIn          (hidden, wordEmbedProjDim) without bias, or null; first stage only
 * @param finalLayerNorm     decoder.final_layer_norm, or null (post-LN models, or not the last stage)
 * @param projectOut         (wordEmbedProjDim, hidden) without bias, or null; last stage only
 * @param layers             the stage's decoder layers, index 0 = {@code range.first()}
 */
public record OptWeights(
        OptConfig config,
        LayerRange range,
        MemorySegment tokenEmbeddings,
        MemorySegment positionEmbeddings,
        Linear projectIn,
        LayerNormWeights finalLayerNorm,
        Linear projectOut,
        LayerWeights[] layers) {

    /** The same stage with other decoder layers (e.g. smoothed or quantized); embeddings and head are shared. */
    public OptWeights withLayers(LayerWeights[] newLayers) {
        if (newLayers.length != layers.length) {
            throw new IllegalArgumentException("expected " + layers.length + " layers, got " + newLayers.length);
        }
        return new OptWeights(config, range, tokenEmbeddings, positionEmbeddings, projectIn, finalLayerNorm,
                projectOut, newLayers.clone());
    }
}
