package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Chooses each RPTQ cluster's static activation range by the error it causes in the linears that read it, instead of
 * taking the calibrated range as it is (the clipping search of AWQ/OmniQuant-style methods, here per cluster). A
 * range that covers every calibration value spends the few codes of 3/4 bits on rare values; one clipped too far
 * saturates common ones. The quantity that matters is the consumers' output error,
 * {@code Σ_rows ‖(Q(x) − x)·Wᵀ‖² = Σ_rows e G eᵀ} with {@code G = Σ_consumers WᵀW} (q, k and v read one input), over a
 * sample of calibration rows. The clusters are chosen one after another, each against the errors of the others as
 * chosen so far (coordinate descent on the whole quadratic form): clipping puts errors on the same outlier tokens in
 * many clusters at once, and judged alone each cluster would clip more than the sum of them can afford.
 *
 * <p>Candidates scale the calibrated range towards an anchor: 0 when the range holds it (a ReLU output keeps its
 * lower end at 0), else the range's centre (a shifted cluster). First both ends together, then the lower end and the
 * upper end in turn with the other fixed; a candidate replaces the best so far only if strictly better, so ties keep
 * the calibrated range.
 */
public final class ClusterRangeSearch {
    /** What {@code eval --act-clip} asks for when it says "search": ratios 0.3 … 1.5 of the calibrated range. */
    public static final float[] DEFAULT_RATIOS = {0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.75f, 0.8f, 0.85f, 0.9f, 0.95f, 1f,
            1.1f, 1.25f, 1.5f};
    /** Calibration rows per (layer, site) the search measures on, unless told ({@code eval --act-clip-rows}). */
    public static final int DEFAULT_ROWS = 2048;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private final int activationBits;
    private final float[] ratios;

    /**
     * @param activationBits the consumers' activation bits (3, 4 or 8): the codes the candidates are judged with
     * @param ratios         scale factors of the calibrated range to try, each > 0
     */
    public ClusterRangeSearch(int activationBits, float[] ratios) {
        if (activationBits != 3 && activationBits != 4 && activationBits != 8) {
            throw new IllegalArgumentException("activation bits must be 3, 4 or 8, got " + activationBits);
        }
        if (ratios.length == 0) {
            throw new IllegalArgumentException("the range search needs at least one ratio");
        }
        for (float r : ratios) {
            if (!(r > 0f) || !Float.isFinite(r)) {
                throw new IllegalArgumentException("range ratios must be finite and > 0, got " + r);
            }
        }
        this.activationBits = activationBits;
        this.ratios = ratios.clone();
    }

    /**
     * {@code plan} with the clusters of one decoder layer's linear inputs given the ranges {@link #refine} finds.
     *
     * @param layer   global layer index
     * @param fp32    that layer's FP32 weights as the checkpoint has them (no reorder, smoothing or shift fused)
     * @param sampler calibration rows of that layer's linear inputs, as the FP32 layer saw them
     */
    public QuantPlan refineLayer(QuantPlan plan, int layer, LayerWeights fp32, ActivationSampler sampler) {
        Map<CalibrationStats.Key, ClusterPlan> reorders = new HashMap<>(plan.reorders());
        for (ActivationSite site : QuantPlanner.REORDERED_SITES) {
            CalibrationStats.Key key = new CalibrationStats.Key(layer, site);
            ClusterPlan clusters = reorders.get(key);
            if (clusters == null) {
                throw new IllegalArgumentException("the plan has no channel clusters for layer " + layer + " " + site.key()
                        + ": the range search is for RPTQ recipes");
            }
            ActivationSampler.Sample sample = sampler.sample(layer, site);
            if (sample == null || sample.count() == 0) {
                throw new IllegalArgumentException("no calibration rows of layer " + layer + " " + site.key()
                        + " to search its ranges on");
            }
            // a shifted recipe's q/k/v and fc1 read the LayerNorm output less its centres ("-shift")
            boolean shifted = plan.recipe().shifting()
                    && (site == ActivationSite.QKV_INPUT || site == ActivationSite.FC1_INPUT);
            float[] centres = shifted ? ChannelShift.centres(plan.stats().get(layer, site)) : null;
            reorders.put(key, refine(clusters, consumers(fp32, site, layer), sample, centres));
        }
        return new QuantPlan(plan.recipe(), plan.alpha(), plan.stats(), reorders);
    }

    private static List<Linear> consumers(LayerWeights w, ActivationSite site, int layer) {
        List<LinearLayer> linears = switch (site) {
            case QKV_INPUT -> List.of(w.qProj(), w.kProj(), w.vProj());
            case OUT_PROJ_INPUT -> List.of(w.outProj());
            case FC1_INPUT -> List.of(w.fc1());
            case FC2_INPUT -> List.of(w.fc2());
            default -> throw new IllegalArgumentException(site.key() + " is not a linear input");
        };
        return linears.stream().map(l -> {
            if (!(l instanceof Linear fp32)) {
                throw new IllegalArgumentException("layer " + layer + " " + site.key() + " is read by a "
                        + l.getClass().getSimpleName() + "; the range search needs the FP32 weights");
            }
            return fp32;
        }).toList();
    }

    /**
     * @param plan      the site's clusters and calibrated ranges (position {@code j} holds channel {@code permutation[j]})
     * @param consumers the FP32 linears reading this site, columns in the activations' channel order (before the
     *                  reorder is fused into them)
     * @param sample    calibration rows of the site, in channel order
     * @param centres   per channel, what the recipe subtracts before the linears see the rows ("-shift"), or null
     * @return the same clusters with the ranges that minimise the consumers' output error on {@code sample}
     */
    public ClusterPlan refine(ClusterPlan plan, List<Linear> consumers, ActivationSampler.Sample sample, float[] centres) {
        int width = plan.width();
        if (sample.width() != width) {
            throw new IllegalArgumentException("the sample has width " + sample.width() + ", the cluster plan " + width);
        }
        for (Linear linear : consumers) {
            if (linear.inFeatures() != width) {
                throw new IllegalArgumentException("a consumer reads " + linear.inFeatures() + " inputs, the plan has " + width);
            }
        }
        if (centres != null && centres.length != width) {
            throw new IllegalArgumentException(centres.length + " centres for " + width + " channels");
        }
        int[] permutation = plan.permutation();
        int clusters = plan.clusters();
        int n = sample.count();
        float[] x = new float[n * width]; // position order, less the centres
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < width; j++) {
                int channel = permutation[j];
                x[i * width + j] = sample.get(i, channel) - (centres == null ? 0f : centres[channel]);
            }
        }
        double[] g = gram(consumers, permutation);
        float[] min = new float[clusters];
        float[] max = new float[clusters];
        int[] ends = new int[clusters];
        double[] e = new double[n * width]; // each row's rounding error with the ranges chosen so far
        for (int c = 0; c < clusters; c++) {
            ends[c] = plan.clusterEnd(c);
            min[c] = plan.clusterMin(c);
            max[c] = plan.clusterMax(c);
            roundingError(min[c], max[c], x, width, plan.clusterStart(c), plan.clusterEnd(c), e);
        }
        double[] h = new double[n * width]; // e·G per row: what the other clusters' errors add to this one's cost
        IntStream.range(0, n).parallel().forEach(i -> {
            for (int a = 0; a < width; a++) {
                double ea = e[i * width + a];
                if (ea != 0) {
                    int row = a * width;
                    for (int k = 0; k < width; k++) {
                        h[i * width + k] += ea * g[row + k];
                    }
                }
            }
        });
        for (int c = 0; c < clusters; c++) { // coordinate descent, one cluster at a time, the others as chosen
            int from = plan.clusterStart(c);
            int size = plan.clusterSize(c);
            double[] block = new double[size * size];
            for (int a = 0; a < size; a++) {
                System.arraycopy(g, (from + a) * width + from, block, a * size, size);
            }
            float[] xc = new float[n * size];
            double[] cross = new double[n * size]; // (G e)_c less this cluster's own part: Σ_{b ∉ c} G_ab e_b
            for (int i = 0; i < n; i++) {
                for (int a = 0; a < size; a++) {
                    xc[i * size + a] = x[i * width + from + a];
                    double own = 0;
                    for (int b = 0; b < size; b++) {
                        own += block[a * size + b] * e[i * width + from + b];
                    }
                    cross[i * size + a] = h[i * width + from + a] - own;
                }
            }
            float[] best = bestRange(min[c], max[c], block, xc, cross);
            if (best[0] == min[c] && best[1] == max[c]) {
                continue;
            }
            min[c] = best[0];
            max[c] = best[1];
            double[] updated = e.clone();
            roundingError(min[c], max[c], x, width, from, from + size, updated);
            IntStream.range(0, n).parallel().forEach(i -> {
                for (int a = 0; a < size; a++) {
                    double d = updated[i * width + from + a] - e[i * width + from + a];
                    if (d != 0) {
                        int row = (from + a) * width;
                        for (int k = 0; k < width; k++) {
                            h[i * width + k] += d * g[row + k];
                        }
                    }
                    e[i * width + from + a] = updated[i * width + from + a];
                }
            });
        }
        return new ClusterPlan(permutation, ends, min, max);
    }

    /** {lo, hi} minimising {@link #error}: both ends scaled together, then each end alone. */
    private float[] bestRange(float min, float max, double[] gram, float[] rows, double[] cross) {
        float anchor = min <= 0f && max >= 0f ? 0f : (min + max) / 2f;
        float[] best = {min, max};
        double[] bestError = {error(min, max, gram, rows, cross)};
        consider(best, bestError, gram, rows, cross, r -> anchor + r * (min - anchor), r -> anchor + r * (max - anchor));
        float lower = best[0];
        float upper = best[1];
        consider(best, bestError, gram, rows, cross, r -> anchor + r * (lower - anchor), r -> upper);
        float lowerNow = best[0];
        consider(best, bestError, gram, rows, cross, r -> lowerNow, r -> anchor + r * (upper - anchor));
        return best;
    }

    /** Every ratio's candidate (in parallel); the strictly best one replaces {@code best}. */
    private void consider(float[] best, double[] bestError, double[] gram, float[] rows, double[] cross,
                          java.util.function.DoubleUnaryOperator lower, java.util.function.DoubleUnaryOperator upper) {
        double[] errors = new double[ratios.length];
        IntStream.range(0, ratios.length).parallel().forEach(r -> {
            float lo = (float) lower.applyAsDouble(ratios[r]);
            float hi = (float) upper.applyAsDouble(ratios[r]);
            errors[r] = hi >= lo ? error(lo, hi, gram, rows, cross) : Double.POSITIVE_INFINITY;
        });
        for (int r = 0; r < ratios.length; r++) { // in ratio order, so the result does not depend on the threads
            if (errors[r] < bestError[0]) {
                bestError[0] = errors[r];
                best[0] = (float) lower.applyAsDouble(ratios[r]);
                best[1] = (float) upper.applyAsDouble(ratios[r]);
            }
        }
    }

    /**
     * Σ over rows of {@code e G eᵀ + 2 e·cross}, e the row's rounding error with range [lo, hi], rounded as
     * {@link LowBitLinear} rounds (same scale, zero point, multiply by the inverse scale, clamp): the consumers'
     * output error as far as it depends on this cluster's range, the other clusters' errors entering through
     * {@code cross} (null: this cluster alone).
     */
    double error(float lo, float hi, double[] gram, float[] rows, double[] cross) {
        int lowest = LowBitLinear.lowestCode(activationBits);
        int highest = LowBitLinear.highestCode(activationBits);
        float[] sz = LowBitLinear.scaleAndZero(lo, hi, lowest, highest);
        float scale = sz[0];
        float zero = sz[1];
        float inverse = 1f / scale;
        int s = (int) Math.round(Math.sqrt(gram.length));
        double[] e = new double[s];
        double total = 0;
        for (int base = 0; base < rows.length; base += s) {
            for (int a = 0; a < s; a++) {
                float x = rows[base + a];
                float q = Math.clamp((float) Math.rint(x * inverse) + zero, lowest, highest);
                e[a] = scale * (q - zero) - x;
            }
            for (int a = 0; a < s; a++) {
                if (e[a] == 0) {
                    continue;
                }
                double ga = cross == null ? 0 : 2 * cross[base + a];
                int row = a * s;
                for (int b = 0; b < s; b++) {
                    ga += gram[row + b] * e[b];
                }
                total += e[a] * ga;
            }
        }
        return total;
    }

    /** Rounding error {@code Q(x) − x} of positions [from, to) of every row with range [lo, hi], into {@code e}. */
    private void roundingError(float lo, float hi, float[] x, int width, int from, int to, double[] e) {
        int lowest = LowBitLinear.lowestCode(activationBits);
        int highest = LowBitLinear.highestCode(activationBits);
        float[] sz = LowBitLinear.scaleAndZero(lo, hi, lowest, highest);
        float scale = sz[0];
        float zero = sz[1];
        float inverse = 1f / scale;
        for (int base = 0; base < x.length; base += width) {
            for (int j = from; j < to; j++) {
                float v = x[base + j];
                float q = Math.clamp((float) Math.rint(v * inverse) + zero, lowest, highest);
                e[base + j] = scale * (q - zero) - v;
            }
        }
    }

    /** {@code G[a][b] = Σ_consumers Σ_out W[out][channels[a]]·W[out][channels[b]]}, (s, s) row-major. */
    static double[] gram(List<Linear> consumers, int[] channels) {
        int s = channels.length;
        int rows = consumers.stream().mapToInt(Linear::outFeatures).sum();
        double[] m = new double[rows * s]; // the consumers' columns, stacked: (Σ out, s)
        int row = 0;
        for (Linear linear : consumers) {
            MemorySegment w = linear.weight();
            long k = linear.inFeatures();
            for (int out = 0; out < linear.outFeatures(); out++, row++) {
                for (int a = 0; a < s; a++) {
                    m[row * s + a] = w.getAtIndex(F32, out * k + channels[a]);
                }
            }
        }
        double[] g = new double[s * s];
        IntStream.range(0, s).parallel().forEach(a -> {
            for (int r = 0; r < rows; r++) {
                double ma = m[r * s + a];
                if (ma != 0) {
                    for (int b = 0; b < s; b++) {
                        g[a * s + b] += ma * m[r * s + b];
                    }
                }
            }
        });
        return g;
    }
}
