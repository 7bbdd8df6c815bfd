package io.bitrelay.runtime.model.opt;

/** The weights of one OPT decoder layer, in the order the layer uses them. */
public record LayerWeights(
        LayerNormWeights selfAttnLayerNorm,
        Linear qProj,   // (hidden, hidden)
        Linear kProj,   // (hidden, hidden)
        Linear vProj,   // (hidden, hidden)
        Linear outProj, // (hidden, hidden)
        LayerNormWeights finalLayerNorm,
        Linear fc1,     // (ffn, hidden)
        Linear fc2) {   // (hidden, ffn)
}
