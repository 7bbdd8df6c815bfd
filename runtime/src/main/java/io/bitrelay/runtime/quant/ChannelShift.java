package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.LayerNormWeights;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptWeights;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;

/**
 * Channel-wise shifting (Outlier Suppression+, Wei et al., arXiv 2304.09145, §4.1) before weight quantization:
 * per input channel j of q/k/v (fc1) the calibrated centre {@code z_j = (min_j + max_j) / 2} is subtracted
 * from the LayerNorm output (β − z) and added back through the consumers' FP32 bias (b + W z), so the model
 * computes the same function. Why it matters for low-bit weights: a consumer's output error is
 * {@code (Ŵ − W) x}; a channel that sits at a large offset (x_j ≈ z_j ± a little, z_j = 5…20 where ordinary
 * channels stay within ±3) turns its column's rounding error into a constant per-output bias error
 * {@code (Ŵ − W)_{·j} z_j} that dominates the weight error of every other column. Centred, the same rounding
 * error only meets the channel's spread, and the offset goes through the bias exactly.
 * <p>Measured on opt-pydoc-wt2-8L256-outliers (12 shifted channels per LayerNorm), docs/quantization.md:
 * W4A16 per channel 205.7 → 188.2, g128 226.8 → 188.5 (FP32 175.6).
 */
public final class ChannelShift {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private ChannelShift() {
    }

    /**
     * @param weights FP32 weights with the LayerNorm biases and the q/k/v/fc1 biases rewritten
     * @param stats   the calibration with the shifted sites' ranges centred (what the shifted layers see)
     */
    public record Result(OptWeights weights, CalibrationStats stats) {
    }

    /** {@code z_j = (min_j + max_j) / 2} per channel: the centre of each channel's calibrated range. */
    public static float[] centres(ChannelStats channels) {
        float[] z = new float[channels.width()];
        for (int j = 0; j < z.length; j++) {
            z[j] = (channels.min()[j] + channels.max()[j]) / 2f;
        }
        return z;
    }

    /**
     * The statistics the shifted layers would have produced: QKV_INPUT and FC1_INPUT ranges minus their
     * centres; every other site unchanged. Needs no weights, so the coordinator plans from it.
     */
    public static CalibrationStats shiftedStats(CalibrationStats stats) {
        Map<CalibrationStats.Key, ChannelStats> shifted = new HashMap<>();
        stats.entries().forEach((key, channels) -> {
            if (key.site() == ActivationSite.QKV_INPUT || key.site() == ActivationSite.FC1_INPUT) {
                shifted.put(key, minus(channels, centres(channels)));
            }
        });
        return stats.with(shifted);
    }

    /**
     * Shifts every decoder layer of {@code weights} (FP32, pre-LayerNorm) by the centres in {@code stats};
     * new tensors are allocated in {@code arena}, the (possibly mapped) checkpoint is never written.
     */
    public static Result shift(OptWeights weights, CalibrationStats stats, Arena arena) {
        if (!weights.config().doLayerNormBefore()) {
            throw new IllegalArgumentException("channel shifting folds into the LayerNorm in front of q/k/v and fc1, "
                    + "which only pre-LayerNorm OPT models have");
        }
        LayerWeights[] layers = weights.layers();
        LayerWeights[] shifted = new LayerWeights[layers.length];
        for (int local = 0; local < layers.length; local++) {
            int layer = weights.range().first() + local;
            LayerWeights w = layers[local];
            float[] z = centres(stats.get(layer, ActivationSite.QKV_INPUT));
            float[] t = centres(stats.get(layer, ActivationSite.FC1_INPUT));
            shifted[local] = new LayerWeights(
                    subtract(w.selfAttnLayerNorm(), z, arena),
                    addInput(fp32(w.qProj(), layer, "q_proj"), z, arena),
                    addInput(fp32(w.kProj(), layer, "k_proj"), z, arena),
                    addInput(fp32(w.vProj(), layer, "v_proj"), z, arena),
                    w.outProj(),
                    subtract(w.finalLayerNorm(), t, arena),
                    addInput(fp32(w.fc1(), layer, "fc1"), t, arena),
                    w.fc2());
        }
        return new Result(weights.withLayers(shifted), shiftedStats(stats));
    }

    private static ChannelStats minus(ChannelStats channels, float[] z) {
        int width = channels.width();
        float[] min = new float[width];
        float[] max = new float[width];
        float[] absMax = new float[width];
        for (int j = 0; j < width; j++) {
            min[j] = channels.min()[j] - z[j];
            max[j] = channels.max()[j] - z[j];
            absMax[j] = Math.max(Math.abs(min[j]), Math.abs(max[j]));
        }
        return new ChannelStats(min, max, absMax, channels.rows());
    }

    private static Linear fp32(LinearLayer layer, int index, String name) {
        if (layer instanceof Linear linear) {
            return linear;
        }
        throw new IllegalArgumentException("layer " + index + " " + name + " is " + layer.getClass().getSimpleName()
                + "; channel shifting folds into FP32 weights, before quantization");
    }

    /** LayerNorm whose output is the original's minus z: x̂·γ + (β − z). */
    private static LayerNormWeights subtract(LayerNormWeights norm, float[] z, Arena arena) {
        checkWidth(z, norm.width(), "LayerNorm");
        MemorySegment bias = arena.allocate((long) norm.width() * Float.BYTES, 64);
        for (int j = 0; j < norm.width(); j++) {
            bias.setAtIndex(F32, j, norm.bias().getAtIndex(F32, j) - z[j]);
        }
        return new LayerNormWeights(norm.gain(), bias, norm.width());
    }

    /** The same weights reading x − z: bias b + W z (accumulated in double), weights shared. */
    private static Linear addInput(Linear linear, float[] z, Arena arena) {
        int in = linear.inFeatures();
        checkWidth(z, in, "linear input");
        MemorySegment bias = arena.allocate((long) linear.outFeatures() * Float.BYTES, 64);
        for (int row = 0; row < linear.outFeatures(); row++) {
            long base = (long) row * in;
            double sum = linear.bias() == null ? 0 : linear.bias().getAtIndex(F32, row);
            for (int j = 0; j < in; j++) {
                sum += (double) linear.weight().getAtIndex(F32, base + j) * z[j];
            }
            bias.setAtIndex(F32, row, (float) sum);
        }
        return new Linear(linear.weight(), bias, linear.outFeatures(), in);
    }

    private static void checkWidth(float[] z, int width, String what) {
        if (z.length != width) {
            throw new IllegalArgumentException("calibration has " + z.length + " channels, the " + what + " has " + width);
        }
    }
}
