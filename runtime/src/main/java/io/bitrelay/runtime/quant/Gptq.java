package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * GPTQ (Frantar et al., arXiv 2210.17323): weights rounded one input column at a time, each column's rounding
 * error spread over the columns not yet rounded in proportion to the inverse Hessian {@code H = XᵀX} of the
 * layer's calibration inputs, so the layer's output on those inputs moves as little as possible. Same codes
 * and scales format as round-to-nearest ({@link PackedWeights}: symmetric, per output channel or per group),
 * so every consumer runs the result unchanged.
 *
 * <p>Per channel, the scale comes from the row's original absmax; per group, from the group's weights as
 * updated when its first column is reached (the paper's reference code does the same). Columns in natural
 * order (no act-order: it would scatter a group's columns). Rows are independent given {@code H}, so they run
 * in parallel; the cost is {@code out · in² / 2} multiply-adds per layer plus {@code O(in³)} to factor {@code H}.
 */
public final class Gptq {
    /** Added to H's diagonal, times its mean: keeps the factorization stable (the paper's 1 %). */
    public static final double DEFAULT_DAMPING = 0.01;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private Gptq() {
    }

    /**
     * @param hessian   (in, in) row-major {@code XᵀX} of the inputs as this layer reads them ({@link Hessians.Moments#forLinear}); not modified
     * @param groupSize input columns per scale; 0 = one scale per output channel
     */
    public static PackedWeights quantize(Linear fp32, double[] hessian, int bits, int groupSize, double damping, Arena arena) {
        int out = fp32.outFeatures();
        int in = fp32.inFeatures();
        if (hessian.length != (long) in * in) {
            throw new IllegalArgumentException("a Hessian for " + in + " input columns needs " + (long) in * in
                    + " entries, got " + hessian.length);
        }
        double[] h = hessian.clone();
        boolean[] dead = new boolean[in];
        for (int i = 0; i < in; i++) {
            if (h[i * in + i] <= 0) { // never active in calibration: its weight cannot matter there, so drop it
                dead[i] = true;
                h[i * in + i] = 1;
            }
        }
        double[] u = inverseUpperFactor(h, in, damping);
        int group = groupSize == 0 || groupSize >= in ? in : groupSize;
        int qmax = PackedWeights.qmax(bits);
        MemorySegment weight = fp32.weight();
        return PackedWeights.build(out, in, bits, groupSize, (j, codes, scales) -> {
            double[] w = new double[in];
            for (int k = 0; k < in; k++) {
                w[k] = dead[k] ? 0 : weight.getAtIndex(F32, (long) j * in + k);
            }
            float scale = group == in ? scaleOf(w, 0, in, qmax) : 0f;
            for (int i = 0; i < in; i++) {
                if (i % group == 0) {
                    if (group != in) {
                        scale = scaleOf(w, i, Math.min(in, i + group), qmax);
                    }
                    scales[i / group] = scale;
                }
                double q = Math.clamp(Math.rint(w[i] / scale), -qmax, qmax);
                codes[i] = (byte) q;
                double error = (w[i] - q * scale) / u[i * in + i];
                int row = i * in;
                for (int k = i + 1; k < in; k++) {
                    w[k] -= error * u[row + k];
                }
            }
        }, arena);
    }

    private static float scaleOf(double[] w, int from, int to, int qmax) {
        double absMax = 0;
        for (int k = from; k < to; k++) {
            absMax = Math.max(absMax, Math.abs(w[k]));
        }
        return absMax > 0 ? (float) (absMax / qmax) : 1f;
    }

    /**
     * The upper Cholesky factor U of {@code (H + λI)⁻¹} ({@code (H + λI)⁻¹ = UᵀU}), λ = damping × mean diag(H):
     * row i of U holds how column i's error moves the columns after it. H is overwritten.
     */
    static double[] inverseUpperFactor(double[] h, int n, double damping) {
        double mean = 0;
        for (int i = 0; i < n; i++) {
            mean += h[i * n + i];
        }
        double lambda = damping * mean / n;
        for (int i = 0; i < n; i++) {
            h[i * n + i] += lambda;
        }
        double[] lower = cholesky(h, n, "the damped Hessian");
        double[] inverse = inverseFromCholesky(lower, n);
        double[] l = cholesky(inverse, n, "the inverse Hessian");
        double[] upper = new double[n * n]; // inverse = L Lᵀ = Uᵀ U for U = Lᵀ
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                upper[j * n + i] = l[i * n + j];
            }
        }
        return upper;
    }

    /** Lower L with {@code a = L Lᵀ}; refuses a matrix that is not positive definite. */
    static double[] cholesky(double[] a, int n, String what) {
        double[] l = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double sum = a[i * n + j];
                int ri = i * n;
                int rj = j * n;
                for (int k = 0; k < j; k++) {
                    sum -= l[ri + k] * l[rj + k];
                }
                if (i == j) {
                    if (!(sum > 0)) {
                        throw new IllegalArgumentException(what + " is not positive definite (pivot " + i + " = " + sum
                                + "); more calibration data or more damping");
                    }
                    l[ri + i] = Math.sqrt(sum);
                } else {
                    l[ri + j] = sum / l[rj + j];
                }
            }
        }
        return l;
    }

    /** {@code (L Lᵀ)⁻¹ = L⁻ᵀ L⁻¹} from lower L; rows of {@code t = L⁻ᵀ} are solved and read contiguously. */
    static double[] inverseFromCholesky(double[] l, int n) {
        double[] t = new double[n * n]; // t[j][i] = L⁻¹[i][j]: row j solves L x = e_j
        for (int j = 0; j < n; j++) {
            int rj = j * n;
            for (int i = j; i < n; i++) {
                int ri = i * n;
                double sum = i == j ? 1 : 0;
                for (int k = j; k < i; k++) {
                    sum -= l[ri + k] * t[rj + k];
                }
                t[rj + i] = sum / l[ri + i];
            }
        }
        double[] result = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double sum = 0;
                for (int k = i; k < n; k++) { // Σ_k L⁻¹[k][i] L⁻¹[k][j], nonzero for k ≥ i ≥ j
                    sum += t[i * n + k] * t[j * n + k];
                }
                result[i * n + j] = sum;
                result[j * n + i] = sum;
            }
        }
        return result;
    }
}
