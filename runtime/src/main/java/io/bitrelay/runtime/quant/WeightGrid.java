package io.bitrelay.runtime.quant;

/**
 * The uniform grid one output channel (or one group of it) is rounded onto: {@code w ≈ scale · (u − zero)}
 * with unsigned codes {@code u ∈ [0, 2^bits − 1]}.
 *
 * <ul>
 *   <li>Symmetric: {@code scale = absmax / (2^(bits−1) − 1)}, {@code zero = 2^(bits−1)}, codes limited to
 *       {@code zero ± (2^(bits−1) − 1)}: 15 levels at 4 bits, half of them wasted on a row whose weights lean
 *       to one side.</li>
 *   <li>Asymmetric (GPTQ's and RPTQ's weight quantizer): the range {@code [min(w, 0), max(w, 0)]} over all
 *       {@code 2^bits} levels, {@code scale = (max − min) / (2^bits − 1)}, integer {@code zero = rint(−min / scale)}
 *       (0 is kept exactly representable, so pruned or dead weights stay 0).</li>
 * </ul>
 * Both keep {@code u − zero} within ±(2^bits − 1), which fits a signed byte for 3 and 4 bits, so the integer
 * GEMM ({@link LowBitLinear}) multiplies {@code u − zero} and needs no zero-point term of its own.
 */
record WeightGrid(float scale, int zero, int lo, int hi) {

    /** The grid of {@code w[from, to)} (a channel or a group; the values as GPTQ has updated them so far). */
    static WeightGrid of(double[] w, int from, int to, int bits, boolean asymmetric) {
        if (!asymmetric) {
            double absMax = 0;
            for (int k = from; k < to; k++) {
                absMax = Math.max(absMax, Math.abs(w[k]));
            }
            int qmax = PackedWeights.qmax(bits);
            int zero = qmax + 1;
            return new WeightGrid(absMax > 0 ? (float) (absMax / qmax) : 1f, zero, zero - qmax, zero + qmax);
        }
        double min = 0;
        double max = 0;
        for (int k = from; k < to; k++) {
            min = Math.min(min, w[k]);
            max = Math.max(max, w[k]);
        }
        int levels = (1 << bits) - 1;
        if (max - min <= 0) {
            return new WeightGrid(1f, 0, 0, levels);
        }
        float scale = (float) ((max - min) / levels);
        int zero = (int) Math.clamp(Math.rint(-min / scale), 0, levels);
        return new WeightGrid(scale, zero, 0, levels);
    }

    /** The unsigned code nearest to {@code w} on this grid (ties to even), clamped to the grid. */
    int code(double w) {
        return (int) Math.clamp(Math.rint(w / scale) + zero, lo, hi);
    }

    /** As {@link #code(double)} with the quotient rounded in float, as round-to-nearest always has. */
    int code(float w) {
        return (int) Math.clamp(Math.rint(w / scale) + zero, lo, hi);
    }

    /** The value code {@code u} stands for. */
    double value(int u) {
        return (double) scale * (u - zero);
    }
}
