package io.bitrelay.runtime.model.opt;

/**
 * The weights of one OPT decoder layer, in the order the layer uses them. The linears are FP32
 * {@link Linear}s as loaded, or whatever a quantization recipe put in their place.
 */
public record LayerWeights(
        LayerNormWeights selfAttnLayerNorm,
        LinearLayer qProj,   // (hidden, hidden)
        LinearLayer kProj,   // (hidden, hidden)
        LinearLayer vProj,   // (hidden, hidden)
        LinearLayer outProj, // (hidden, hidden)
        LayerNormWeights finalLayerNorm,
        LinearLayer fc1,     // (ffn, hidden)
        LinearLayer fc2) {   // (hidden, ffn)
}
