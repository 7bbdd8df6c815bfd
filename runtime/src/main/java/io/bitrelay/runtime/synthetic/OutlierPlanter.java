package io.bitrelay.runtime.synthetic;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Plants the activation outliers large OPT models show, without changing what the model computes:
 * a LayerNorm output channel scaled by f has its consumers' input columns divided by f, and a channel
 * shifted by s has {@code W[:, j]·s} taken off its consumers' biases. So quantizers see
 * LLM-like activations (a few channels 20–100× larger, some with off-centre ranges) while the FP32
 * function stays that of the unplanted model, which tests can check.
 */
final class OutlierPlanter {
    private OutlierPlanter() {
    }

    record Outlier(int channel, float scale, float shift) {
    }

    /** Draws distinct channels: the first {@code scaled} get a scale, the next {@code shifted} a shift. */
    static List<Outlier> draw(SplittableRandom random, int width, int scaled, int shifted) {
        if (scaled + shifted > width) {
            throw new IllegalArgumentException("cannot plant " + (scaled + shifted) + " outlier channels in width " + width);
        }
        int[] channels = random.ints(0, width).distinct().limit(scaled + shifted).toArray();
        List<Outlier> outliers = new ArrayList<>();
        for (int i = 0; i < channels.length; i++) {
            if (i < scaled) {
                outliers.add(new Outlier(channels[i], (float) random.nextDouble(20, 100), 0f));
            } else {
                float magnitude = (float) random.nextDouble(5, 20);
                outliers.add(new Outlier(channels[i], 1f, random.nextBoolean() ? magnitude : -magnitude));
            }
        }
        return outliers;
    }

    /**
     * @param gain      LayerNorm weight (width)
     * @param bias      LayerNorm bias (width)
     * @param consumers for each consuming linear layer, its weight (out, width) row-major and its bias (out)
     */
    static void plant(List<Outlier> outliers, float[] gain, float[] bias, List<float[][]> consumers, int width) {
        for (Outlier outlier : outliers) {
            int j = outlier.channel();
            gain[j] *= outlier.scale();
            bias[j] = bias[j] * outlier.scale() + outlier.shift();
            for (float[][] consumer : consumers) {
                float[] weight = consumer[0];
                float[] consumerBias = consumer[1];
                int out = consumerBias.length;
                for (int row = 0; row < out; row++) {
                    int index = row * width + j;
                    weight[index] /= outlier.scale();
                    consumerBias[row] -= weight[index] * outlier.shift();
                }
            }
        }
    }
}
