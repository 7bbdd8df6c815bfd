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
 * <p>Per channel, the grid comes from the row's original weights; per group, from the group's weights as
 * updated when its first column is reached (the paper's reference code does the same). Columns in natural order
 * unless act-order is asked for (then the scales are static, from the original weights). Rows are independent
 * given {@code H}, so they run in parallel; the cost is {@code out · in² / 2} multiply-adds per layer plus
 * {@code O(in³)} to factor {@code H}.
 */
public final class Gptq {
    /** Added to H's diagonal, times its mean: keeps the factorization stable (the paper's 1 %). */
    public static final double DEFAULT_DAMPING = 0.01;
    /**
     * Whether {@link #quantize(Linear, double[], int, int, double, Arena)} rounds in act-order; system property
     * {@code bitrelay.gptq.act-order} (an experiment switch: docs/quantization.md has both measured).
     */
    public static final boolean ACT_ORDER = Boolean.parseBoolean(System.getProperty("bitrelay.gptq.act-order", "false"));
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private Gptq() {
    }

    /**
     * @param hessian   (in, in) row-major {@code XᵀX} of the inputs as this layer reads them ({@link Hessians.Moments#forLinear}); not modified
     * @param groupSize input columns per scale; 0 = one scale per output channel
     */
    public static PackedWeights quantize(Linear fp32, double[] hessian, int bits, int groupSize, double damping, Arena arena) {
        return quantize(fp32, hessian, bits, groupSize, damping, ACT_ORDER, arena);
    }

    /**
     * @param actOrder round the columns in descending order of {@code H_ii} (their inputs' energy), so the columns
     *                 that matter most are rounded while the most columns are left to absorb their error; the
     *                 scales are then fixed up front from the original weights (static groups), as a group's
     *                 columns no longer come together
     */
    public static PackedWeights quantize(Linear fp32, double[] hessian, int bits, int groupSize, double damping,
                                         boolean actOrder, Arena arena) {
        return quantize(fp32, factor(hessian, fp32.inFeatures(), damping, actOrder), bits, groupSize, arena);
    }

    /**
     * What GPTQ needs of a Hessian, computed once for every linear that reads the same input (q, k and v):
     * the rounding order, the dead columns and U in that order.
     */
    public record Factor(int width, int[] order, boolean[] dead, double[] u, boolean actOrder) {
    }

    /** Factors {@code hessian} ((in, in) row-major, not modified); see {@link #quantize(Linear, double[], int, int, double, boolean, Arena)}. */
    public static Factor factor(double[] hessian, int in, double damping, boolean actOrder) {
        if (hessian.length != (long) in * in) {
            throw new IllegalArgumentException("a Hessian for " + in + " input columns needs " + (long) in * in
                    + " entries, got " + hessian.length);
        }
        boolean[] dead = new boolean[in];
        for (int i = 0; i < in; i++) {
            dead[i] = hessian[i * in + i] <= 0; // never active in calibration: its weight cannot matter there, so drop it
        }
        int[] order = columnOrder(hessian, in, actOrder);
        double[] h = new double[in * in]; // H in rounding order
        for (int a = 0; a < in; a++) {
            for (int b = 0; b < in; b++) {
                h[a * in + b] = hessian[order[a] * in + order[b]];
            }
            if (dead[order[a]]) {
                h[a * in + a] = 1;
            }
        }
        return new Factor(in, order, dead, inverseUpperFactor(h, in, damping), actOrder);
    }

    /** GPTQ with a prepared {@link Factor} of the layer's input Hessian, symmetric grids. */
    public static PackedWeights quantize(Linear fp32, Factor factor, int bits, int groupSize, Arena arena) {
        return quantize(fp32, factor, bits, groupSize, false, arena);
    }

    /**
     * GPTQ with a prepared {@link Factor} of the layer's input Hessian.
     *
     * @param asymmetric grids with zero points ({@link WeightGrid}; the paper's and RPTQ's quantizer)
     */
    public static PackedWeights quantize(Linear fp32, Factor factor, int bits, int groupSize, boolean asymmetric,
                                         Arena arena) {
        int out = fp32.outFeatures();
        int in = fp32.inFeatures();
        if (factor.width() != in) {
            throw new IllegalArgumentException("a Hessian factor of width " + factor.width() + " for a layer of " + in
                    + " input columns");
        }
        int[] order = factor.order();
        boolean[] dead = factor.dead();
        double[] u = factor.u();
        boolean actOrder = factor.actOrder();
        int group = groupSize == 0 || groupSize >= in ? in : groupSize;
        int groups = Math.ceilDiv(in, group);
        MemorySegment weight = fp32.weight();
        return PackedWeights.build(out, in, bits, groupSize, asymmetric, (j, codes, grids) -> {
            double[] original = new double[in];
            for (int k = 0; k < in; k++) {
                original[k] = dead[k] ? 0 : weight.getAtIndex(F32, (long) j * in + k);
            }
            boolean staticScales = actOrder || group == in;
            if (staticScales) {
                for (int g = 0; g < groups; g++) {
                    grids[g] = WeightGrid.of(original, g * group, Math.min(in, (g + 1) * group), bits, asymmetric);
                }
            }
            double[] w = new double[in]; // in rounding order
            for (int i = 0; i < in; i++) {
                w[i] = original[order[i]];
            }
            for (int i = 0; i < in; i++) {
                int column = order[i];
                if (!staticScales && column % group == 0) { // natural order: a group's grid from its updated weights
                    grids[column / group] = WeightGrid.of(w, i, Math.min(in, i + group), bits, asymmetric);
                }
                WeightGrid grid = grids[column / group];
                int code = grid.code(w[i]);
                codes[column] = (byte) code;
                double error = (w[i] - grid.value(code)) / u[i * in + i];
                int row = i * in;
                for (int k = i + 1; k < in; k++) {
                    w[k] -= error * u[row + k];
                }
            }
        }, arena);
    }

    /** Natural order, or columns by descending H_ii (ties by index). */
    private static int[] columnOrder(double[] hessian, int in, boolean actOrder) {
        Integer[] columns = new Integer[in];
        for (int i = 0; i < in; i++) {
            columns[i] = i;
        }
        if (actOrder) {
            java.util.Arrays.sort(columns, (a, b) -> Double.compare(hessian[b * in + b], hessian[a * in + a]));
        }
        int[] order = new int[in];
        for (int i = 0; i < in; i++) {
            order[i] = columns[i];
        }
        return order;
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
