package io.bitrelay.runtime.model.opt;

/**
 * The contiguous decoder layers [first, end) one pipeline stage owns; the first stage also owns the
 * embeddings, the last the final LayerNorm and LM head.
 */
public record LayerRange(int first, int end, int totalLayers) {

    public LayerRange {
        if (first < 0 || end > totalLayers || first > end) {
            throw new IllegalArgumentException("layer range [" + first + ", " + end + ") is outside a model of "
                    + totalLayers + " layers");
        }
    }

    public static LayerRange all(int totalLayers) {
        return new LayerRange(0, totalLayers, totalLayers);
    }

    public int count() {
        return end - first;
    }

    public boolean ownsEmbeddings() {
        return first == 0;
    }

    public boolean ownsHead() {
        return end == totalLayers;
    }

    @Override
    public String toString() {
        return "layers [" + first + ", " + end + ") of " + totalLayers;
    }
}
