package io.bitrelay.runtime.quant;

import java.util.Arrays;

/**
 * How calibration turns the activations it sees into each channel's static range {@code [min, max]}: what
 * RPTQ's clusters, the per-cluster and per-tensor activation scales and the channel centres of the "-shift"
 * recipes are made from. {@code absMax} (SmoothQuant, symmetric W8A8 scales) is always the true extreme.
 */
public enum RangeEstimator {
    /**
     * The extremes over every calibration row. The range can only widen as more data comes in, so a rare
     * spike decides a whole cluster's scale: on opt-pydoc-wt2-8L256-outliers, W4A8 RPTQ went from +6.6 % to
     * +12.1 % (whole WikiText-2 test) when calibration grew from 16 to 128 sequences.
     */
    MIN_MAX("min-max"),
    /**
     * The mean over calibration batches (each {@code observe} call: one sequence in {@link Calibration}) of
     * each batch's per-channel min and max: the typical extreme of a sequence, which does not drift with
     * the number of sequences (RPTQ's code keeps a running average of per-batch min/max, "ema_minmax").
     * Measured on opt-pydoc-wt2-8L256-outliers with round-to-nearest weights (only the ranges differ), first 5
     * WikiText-2 test windows, 16 → 128 calibration sequences of valid.txt: W4A4 RPTQ 213.95 → 215.48 and W4A3
     * 231.92 → 231.64, where the extremes gave 214.68 → 218.62 and 246.85 → 262.37 (docs/quantization.md).
     */
    BATCH_MEAN("batch-mean");

    /** What {@link Calibration#run} uses when not told: the extremes, as before the choice existed. */
    public static final RangeEstimator DEFAULT = MIN_MAX;

    private final String key;

    RangeEstimator(String key) {
        this.key = key;
    }

    /** The name options and files use. */
    public String key() {
        return key;
    }

    /**
     * @param option what the value was given as (a CLI option or configuration key), named in the error
     */
    public static RangeEstimator parse(String value, String option) {
        for (RangeEstimator e : values()) {
            if (e.key.equals(value)) {
                return e;
            }
        }
        throw new IllegalArgumentException(option + ": '" + value + "' is not one of "
                + Arrays.stream(values()).map(RangeEstimator::key).toList());
    }
}
