package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationSite;

import java.util.Map;
import java.util.TreeMap;

/**
 * Per (layer, linear input site) the second moments GPTQ weighs rounding errors with: {@code XᵀX} of the
 * calibration rows that reached the site, their column sums and count. Held by whoever quantizes (the
 * in-process eval, a worker for its own layers), never sent anywhere: at OPT-175B one fc2 input alone is
 * 49152² entries.
 */
public final class Hessians {
    private final Map<CalibrationStats.Key, Moments> entries;

    /**
     * @param xtx  (width, width) row-major, {@code Σ x xᵀ} over the rows
     * @param sums (width) {@code Σ x}
     */
    public record Moments(int width, double[] xtx, double[] sums, long rows) {
        public Moments {
            if (xtx.length != (long) width * width || sums.length != width) {
                throw new IllegalArgumentException("moments of width " + width + " need " + (long) width * width
                        + " and " + width + " values, got " + xtx.length + " and " + sums.length);
            }
        }

        /**
         * The Hessian of the linear that reads this site's rows shifted by {@code centre} (null: unshifted) and
         * then gathered through {@code permutation} (column c reads channel permutation[c]; null: in order):
         * {@code Σ (x−z)(x−z)ᵀ = XᵀX − z sᵀ − s zᵀ + n z zᵀ}, permuted on both axes.
         */
        public double[] forLinear(float[] centre, int[] permutation) {
            if (centre != null && centre.length != width || permutation != null && permutation.length != width) {
                throw new IllegalArgumentException("centre/permutation of the wrong width for moments of width " + width);
            }
            double[] h = new double[width * width];
            for (int a = 0; a < width; a++) {
                int ia = permutation == null ? a : permutation[a];
                double za = centre == null ? 0 : centre[ia];
                for (int b = 0; b < width; b++) {
                    int ib = permutation == null ? b : permutation[b];
                    double value = xtx[ia * width + ib];
                    if (centre != null) {
                        double zb = centre[ib];
                        value += -za * sums[ib] - sums[ia] * zb + rows * za * zb;
                    }
                    h[a * width + b] = value;
                }
            }
            return h;
        }

        /** The mean input of that linear, {@code Σx/n − z}, in the same column order as {@link #forLinear}. */
        public double[] meanForLinear(float[] centre, int[] permutation) {
            if (centre != null && centre.length != width || permutation != null && permutation.length != width) {
                throw new IllegalArgumentException("centre/permutation of the wrong width for moments of width " + width);
            }
            double[] mean = new double[width];
            for (int a = 0; a < width; a++) {
                int ia = permutation == null ? a : permutation[a];
                mean[a] = (rows == 0 ? 0 : sums[ia] / rows) - (centre == null ? 0 : centre[ia]);
            }
            return mean;
        }
    }

    public Hessians(Map<CalibrationStats.Key, Moments> entries) {
        this.entries = new TreeMap<>(entries);
    }

    /** The moments at {@code (layer, site)}; a clear error when calibration never reached it. */
    public Moments get(int layer, ActivationSite site) {
        Moments moments = entries.get(new CalibrationStats.Key(layer, site));
        if (moments == null) {
            throw new IllegalArgumentException("no GPTQ moments for layer " + layer + " " + site.key()
                    + " (calibrated layers: " + entries.keySet() + ")");
        }
        return moments;
    }

    public int size() {
        return entries.size();
    }
}
