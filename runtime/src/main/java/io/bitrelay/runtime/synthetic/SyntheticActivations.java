package io.bitrelay.runtime.synthetic;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Hidden states shaped like the ones OPT models send between stages, for link codec tests and benchmarks:
 * Gaussian channels, a few outlier channels {@value #OUTLIER_SCALE}× larger, some channels with an
 * off-centre range (shifted by {@value #SHIFT}, a systematic per-channel bias that does not scale with the
 * token), and a per-token magnitude that varies within a factor of {@value #TOKEN_SPREAD}. Which channels are
 * outliers depends on the width alone, so calibration rows and measured rows of one width share them.
 */
public final class SyntheticActivations {
    public static final float OUTLIER_SCALE = 50f;
    public static final float SHIFT = 10f;
    /** Largest over smallest per-token magnitude (log-uniform in between). */
    public static final float TOKEN_SPREAD = 4f;
    /** One channel in this many is a 50× outlier (at least one). */
    public static final int OUTLIER_EVERY = 200;
    /** One channel in this many is shifted (at least one). */
    public static final int SHIFTED_EVERY = 32;

    private SyntheticActivations() {
    }

    /** {@code rows × width} FP32 values, row-major; the same (rows, width, seed) gives the same values. */
    public static float[] llmLike(int rows, int width, long seed) {
        return llmLike(rows, width, seed, TOKEN_SPREAD);
    }

    /** As {@link #llmLike(int, int, long)}, with per-token magnitudes spread by {@code tokenSpread} (≥ 1; 1: none). */
    public static float[] llmLike(int rows, int width, long seed, float tokenSpread) {
        if (!(tokenSpread >= 1)) {
            throw new IllegalArgumentException("tokenSpread must be >= 1, got " + tokenSpread);
        }
        float[] channelScale = new float[width];
        float[] channelShift = new float[width];
        Arrays.fill(channelScale, 1f);
        SplittableRandom layout = new SplittableRandom(width);
        int outliers = Math.max(1, width / OUTLIER_EVERY);
        int shifted = Math.min(width - outliers, Math.max(1, width / SHIFTED_EVERY));
        int[] channels = layout.ints(0, width).distinct().limit(outliers + shifted).toArray();
        for (int i = 0; i < channels.length; i++) {
            if (i < outliers) {
                channelScale[channels[i]] = OUTLIER_SCALE;
            } else {
                channelShift[channels[i]] = SHIFT;
            }
        }
        SplittableRandom random = new SplittableRandom(seed);
        float[] values = new float[Math.multiplyExact(rows, width)];
        for (int r = 0; r < rows; r++) {
            double magnitude = Math.pow(tokenSpread, random.nextDouble() - 0.5);
            for (int c = 0; c < width; c++) {
                values[r * width + c] = (float) (random.nextGaussian() * magnitude * channelScale[c] + channelShift[c]);
            }
        }
        return values;
    }
}
