package io.bitrelay.runtime.quant;

/**
 * Per-channel range of one activation tensor over the calibration rows.
 *
 * @param min    (width) per-channel minimum as the collector's {@link RangeEstimator} estimates it: the smallest value
 *               seen, or the mean of each batch's smallest
 * @param max    (width) per-channel maximum, likewise
 * @param absMax (width) max |x| per channel: what SmoothQuant and symmetric scales use
 * @param rows   rows (tokens) the range was taken over
 */
public record ChannelStats(float[] min, float[] max, float[] absMax, long rows) {

    public ChannelStats {
        if (min.length != max.length || min.length != absMax.length) {
            throw new IllegalArgumentException("min, max and absMax must have one entry per channel");
        }
    }

    public int width() {
        return absMax.length;
    }

    /** max |x| over all channels: the range of a per-tensor scale. */
    public float tensorAbsMax() {
        float m = 0f;
        for (float v : absMax) {
            m = Math.max(m, v);
        }
        return m;
    }

    /** The range of x / s per channel (s > 0), which is what a channel divided by s would have shown. */
    public ChannelStats dividedBy(float[] s) {
        if (s.length != width()) {
            throw new IllegalArgumentException("need " + width() + " factors, got " + s.length);
        }
        float[] newMin = new float[s.length];
        float[] newMax = new float[s.length];
        float[] newAbs = new float[s.length];
        for (int j = 0; j < s.length; j++) {
            newMin[j] = min[j] / s[j];
            newMax[j] = max[j] / s[j];
            newAbs[j] = absMax[j] / s[j];
        }
        return new ChannelStats(newMin, newMax, newAbs, rows);
    }
}
