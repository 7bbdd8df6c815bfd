package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptWeights;
import io.bitrelay.runtime.quant.ActivationQuantization;
import io.bitrelay.runtime.quant.W8A8Linear;

import java.util.List;

/** How a GPU stage computes its decoder linears; read off the CPU model it is built from. */
public enum StageRecipe {
    /** FP32 base weights run as FP16 cuBLASLt GEMMs (FP32 accumulation), activations FP16 between kernels. */
    FP16("fp16"),
    /** SmoothQuant-style W8A8 (already folded by RecipeApplier): INT8 GEMMs, per-token dynamic activation scales. */
    W8A8("w8a8");

    private final String label;

    StageRecipe(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }

    public static StageRecipe parse(String name) {
        for (StageRecipe recipe : values()) {
            if (recipe.label.equalsIgnoreCase(name)) {
                return recipe;
            }
        }
        throw new IllegalArgumentException("unknown GPU stage recipe '" + name + "' (known: fp16, w8a8)");
    }

    /**
     * FP16 when every decoder linear is an FP32 {@link Linear}; W8A8 when every one is a per-token dynamic
     * {@link W8A8Linear}; anything else is refused with the layer and linear that does not fit.
     */
    public static StageRecipe of(OptWeights weights) {
        StageRecipe found = null;
        LayerWeights[] layers = weights.layers();
        for (int local = 0; local < layers.length; local++) {
            StageRecipe recipe = ofLayer(layers[local], weights.range().first() + local);
            if (found != null && found != recipe) {
                throw new IllegalArgumentException("layer " + (weights.range().first() + local)
                        + " mixes FP32 and W8A8 linears; a GPU stage runs one recipe");
            }
            found = recipe;
        }
        if (found == null) {
            throw new IllegalArgumentException("the stage " + weights.range() + " has no decoder layers");
        }
        return found;
    }

    /** The recipe of one decoder layer (model layer {@code layer}), refused as {@link #of} refuses. */
    public static StageRecipe ofLayer(LayerWeights w, int layer) {
        StageRecipe found = null;
        for (LinearLayer linear : List.of(w.qProj(), w.kProj(), w.vProj(), w.outProj(), w.fc1(), w.fc2())) {
            StageRecipe recipe = switch (linear) {
                case Linear ignored -> FP16;
                case W8A8Linear w8 when w8.activations() == ActivationQuantization.PER_TOKEN_DYNAMIC -> W8A8;
                case W8A8Linear ignored -> throw new IllegalArgumentException("layer " + layer
                        + ": the GPU stage runs W8A8 with per-token dynamic activation scales only (SmoothQuant "
                        + "w8a8-smoothquant or w8a8-pertoken), not per-tensor static");
                default -> throw new IllegalArgumentException("layer " + layer + ": the GPU "
                        + "stage runs FP32 (as FP16) or W8A8 linears, not " + linear.getClass().getSimpleName());
            };
            if (found != null && found != recipe) {
                throw new IllegalArgumentException("layer " + layer + " mixes FP32 and W8A8 linears; a GPU stage runs one recipe");
            }
            found = recipe;
        }
        return found;
    }
}
