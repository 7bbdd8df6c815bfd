package io.bitrelay.runtime.planning;

/**
 * What fraction of the datasheet a real stage reaches, and the fixed cost of each layer's kernel launches.
 * Defaults are conservative readings for decode (GEMV-like GEMMs stream weights at most ~80 % of HBM
 * bandwidth; small-M tensor-core GEMMs rarely pass half of peak).
 */
public record Efficiency(double memory, double compute, double layerOverheadSeconds) {
    public static final Efficiency DEFAULT = new Efficiency(0.8, 0.5, 20e-6);

    public Efficiency {
        if (!(memory > 0 && memory <= 1) || !(compute > 0 && compute <= 1) || !(layerOverheadSeconds >= 0)) {
            throw new IllegalArgumentException("efficiencies must be in (0, 1] and the overhead ≥ 0, got " + this);
        }
    }
}
