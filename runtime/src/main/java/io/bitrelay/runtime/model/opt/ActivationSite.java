package io.bitrelay.runtime.model.opt;

/**
 * The places in a decoder layer where activations would be quantized: each linear layer's input, the
 * keys and values going into the cache, and the hidden state leaving a stage (what crosses a link).
 */
public enum ActivationSite {
    /** self_attn_layer_norm output (pre-LN; the layer input for post-LN), (rows, hidden): feeds q/k/v_proj. */
    QKV_INPUT("qkv_input"),
    /** Attention output, heads concatenated, (rows, hidden): feeds out_proj. */
    OUT_PROJ_INPUT("out_proj_input"),
    /** final_layer_norm output (pre-LN; the residual for post-LN), (rows, hidden): feeds fc1. */
    FC1_INPUT("fc1_input"),
    /** fc1 output after ReLU, (rows, ffn): feeds fc2. */
    FC2_INPUT("fc2_input"),
    /** k_proj output, (rows, hidden), as stored in the cache. */
    KEYS("keys"),
    /** v_proj output, (rows, hidden), as stored in the cache. */
    VALUES("values"),
    /** The hidden state after the stage's last layer, (rows, hidden); reported under that layer's index. */
    STAGE_OUTPUT("stage_output");

    private final String key;

    ActivationSite(String key) {
        this.key = key;
    }

    /** Stable name for files (the calibration JSON). */
    public String key() {
        return key;
    }

    public static ActivationSite fromKey(String key) {
        for (ActivationSite site : values()) {
            if (site.key.equals(key)) {
                return site;
            }
        }
        throw new IllegalArgumentException("unknown activation site '" + key + "'");
    }
}
