package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.ops.cpu.CpuParallelism;
import io.bitrelay.runtime.ops.cpu.Int8MatMul;
import io.bitrelay.runtime.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * A linear layer computing in integers with packed low-bit weights and asymmetric low-bit activations
 * (W4A8, W4A4, W4A3; RPTQ, Yuan et al., arXiv 2304.01089, and its per-tensor / per-token baselines).
 *
 * <p>The input's K positions are cut into clusters, contiguous K-ranges (RPTQ's reorder, fused into the
 * weights, makes each channel cluster contiguous; per-tensor and per-token use one cluster). Cluster
 * {@code c} of row {@code i} is quantized asymmetrically, {@code x ≈ s_ic·(q − z_ic)}, with q in the
 * signed code range [lo, hi] (3 bits: [−4, 3], 4: [−8, 7], 8: [−127, 127] — not −128, which Int8MatMul
 * excludes) and an integer zero point; the scale and zero point are static per cluster (from calibration)
 * or per row (per-token, measured). Weights are {@code w ≈ s_w[j, g]·q_w} per output channel or per group of K,
 * with {@code q_w = u − zero} the codes less their zero point ({@link PackedWeights#unpackRow}: symmetric or
 * asymmetric, a signed byte either way, so the weight zero point costs the GEMM nothing). K splits into segments, the maximal runs of one cluster and one
 * weight group, and each segment is one INT8 GEMM with an exact int32 result:
 *
 * <pre>
 *   acc_seg[i, j] = Σ_{k ∈ seg} q_x[i, k] · q_w[j, k]                        (Int8MatMul on the K-block)
 *   out[i, j]     = bias[j] + Σ_seg s_{i,c(seg)} · s_w[j, g(seg)] · (acc_seg[i, j] − z_{i,c(seg)} · rowsum_seg[j])
 *   rowsum_seg[j] = Σ_{k ∈ seg} q_w[j, k]                                    (precomputed, int)
 * </pre>
 *
 * since {@code Σ s(q_x − z)·s_w q_w = s·s_w·(Σ q_x q_w − z Σ q_w)}. The activation codes are written
 * block by block ({@code (rows, len_seg)} per segment) and the weights are unpacked per call into the same
 * blocked int8 layout, so every GEMM reads contiguous operands.
 *
 * <p>An optional {@code gather} makes position {@code k} read input channel {@code gather[k]}: out_proj uses
 * it to see the attention output in cluster order (see {@link ReorderFusion}); the quantizer reads every
 * element once anyway, so the gather costs an index load.
 */
public final class LowBitLinear implements StoredLinear {
    public static final String KIND = "low-bit";
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final int ROWS_PER_TASK = 32;
    /** A cluster range narrower than this fraction of its magnitude is widened, bounding the zero point. */
    private static final float MIN_RELATIVE_RANGE = 1f / 4096;

    private final PackedWeights weights;
    private final MemorySegment bias;      // (outFeatures) FP32, or null
    private final int activationBits;
    private final ActivationRanges ranges;
    private final int[] clusterEnds;       // (clusters) exclusive K end of each cluster, last = inFeatures
    private final float[] clusterMin;      // (clusters) static ranges (unused for per-token)
    private final float[] clusterMax;      // (clusters)
    private final int[] gather;            // (inFeatures) input channel of each position, or null
    private final int lo;                  // smallest activation code
    private final int hi;                  // largest activation code
    // derived
    private final float[] staticScale;     // (clusters)
    private final int[] staticZero;        // (clusters)
    private final int[] segmentStart;      // (segments)
    private final int[] segmentEnd;        // (segments)
    private final int[] segmentCluster;    // (segments)
    private final float[][] segmentWeightScale; // (segments, outFeatures): s_w[j, g(seg)]
    private final int[][] segmentRowSum;   // (segments, outFeatures): Σ q_w over the segment

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** Per-thread buffers, grown to the largest call seen (Arena.ofAuto: freed with the thread's ThreadLocal). */
    private static final class Scratch {
        MemorySegment codes = MemorySegment.NULL;   // (rows, K) INT8 activation codes, blocked by segment
        MemorySegment weights = MemorySegment.NULL; // (N, K) INT8 weight codes, blocked by segment
        MemorySegment acc = MemorySegment.NULL;     // (rows, N) int32 of one segment
        float[] scales = new float[0];              // (rows, clusters)
        int[] zeros = new int[0];                   // (rows, clusters)

        void ensure(long codeBytes, long weightBytes, long accBytes, int rowClusters) {
            if (codes.byteSize() < codeBytes) {
                codes = Arena.ofAuto().allocate(codeBytes, 64);
            }
            if (weights.byteSize() < weightBytes) {
                weights = Arena.ofAuto().allocate(weightBytes, 64);
            }
            if (acc.byteSize() < accBytes) {
                acc = Arena.ofAuto().allocate(accBytes, 64);
            }
            if (scales.length < rowClusters) {
                scales = new float[rowClusters];
                zeros = new int[rowClusters];
            }
        }
    }

    private LowBitLinear(PackedWeights weights, MemorySegment bias, int activationBits, ActivationRanges ranges,
                         int[] clusterEnds, float[] clusterMin, float[] clusterMax, int[] gather) {
        int k = weights.inFeatures();
        if (activationBits != 3 && activationBits != 4 && activationBits != 8) {
            throw new IllegalArgumentException("activation bits must be 3, 4 or 8, got " + activationBits);
        }
        if (clusterEnds.length < 1 || clusterMin.length != clusterEnds.length || clusterMax.length != clusterEnds.length
                || clusterEnds[clusterEnds.length - 1] != k) {
            throw new IllegalArgumentException("need one min and max per cluster and the last cluster to end at " + k
                    + ", got ends " + Arrays.toString(clusterEnds));
        }
        if (gather != null && gather.length != k) {
            throw new IllegalArgumentException("gather has " + gather.length + " entries for " + k + " inputs");
        }
        this.weights = weights;
        this.bias = bias;
        this.activationBits = activationBits;
        this.ranges = ranges;
        this.clusterEnds = clusterEnds;
        this.clusterMin = clusterMin;
        this.clusterMax = clusterMax;
        this.gather = gather;
        this.lo = lowestCode(activationBits);
        this.hi = highestCode(activationBits);
        int clusters = clusterEnds.length;
        staticScale = new float[clusters];
        staticZero = new int[clusters];
        for (int c = 0; c < clusters; c++) {
            float[] sz = scaleAndZero(clusterMin[c], clusterMax[c]);
            staticScale[c] = sz[0];
            staticZero[c] = (int) sz[1];
        }
        TreeSet<Integer> cuts = new TreeSet<>();
        for (int c = 0; c < clusters; c++) {
            cuts.add(clusterEnds[c]);
        }
        for (int g = weights.groupSize(); g < k; g += weights.groupSize()) {
            cuts.add(g);
        }
        int segments = cuts.size();
        segmentStart = new int[segments];
        segmentEnd = new int[segments];
        segmentCluster = new int[segments];
        segmentWeightScale = new float[segments][];
        segmentRowSum = new int[segments][weights.outFeatures()];
        int start = 0;
        int s = 0;
        int cluster = 0;
        for (int end : cuts) {
            while (clusterEnds[cluster] <= start) {
                cluster++;
            }
            segmentStart[s] = start;
            segmentEnd[s] = end;
            segmentCluster[s] = cluster;
            int group = start / weights.groupSize();
            float[] scales = new float[weights.outFeatures()];
            for (int j = 0; j < scales.length; j++) {
                scales[j] = weights.scale(j, group);
            }
            segmentWeightScale[s] = scales;
            start = end;
            s++;
        }
        byte[] row = new byte[k];
        for (int j = 0; j < weights.outFeatures(); j++) {
            weights.unpackRow(j, row);
            for (s = 0; s < segments; s++) {
                int sum = 0;
                for (int i = segmentStart[s]; i < segmentEnd[s]; i++) {
                    sum += row[i];
                }
                segmentRowSum[s][j] = sum;
            }
        }
    }

    /**
     * Quantizes {@code fp32} (its input columns already in position order) into {@code arena}.
     *
     * @param clusterEnds exclusive end position of each activation cluster; {@code {inFeatures}} for one cluster
     * @param clusterMin  calibrated minimum per cluster (static ranges; ignored for per-token)
     * @param clusterMax  calibrated maximum per cluster
     * @param gather      input channel read at each position, or null for the identity
     */
    public static LowBitLinear quantize(Linear fp32, LowBitScheme scheme, int[] clusterEnds, float[] clusterMin,
                                        float[] clusterMax, int[] gather, Arena arena) {
        return of(PackedWeights.quantize(fp32, scheme.weightBits(), scheme.groupSize(), scheme.asymmetricWeights(), arena),
                fp32, scheme,
                clusterEnds, clusterMin, clusterMax, gather);
    }

    /** As {@link #quantize} with {@code weights} already rounded (by {@link Gptq}) from {@code fp32}'s. */
    public static LowBitLinear of(PackedWeights weights, Linear fp32, LowBitScheme scheme, int[] clusterEnds,
                                  float[] clusterMin, float[] clusterMax, int[] gather) {
        if (!scheme.integerActivations()) {
            throw new IllegalArgumentException("LowBitLinear quantizes activations; use WeightOnlyLinear for "
                    + scheme.activationBits() + "-bit activations");
        }
        if (weights.outFeatures() != fp32.outFeatures() || weights.inFeatures() != fp32.inFeatures()
                || weights.bits() != scheme.weightBits()) {
            throw new IllegalArgumentException("packed weights " + weights.outFeatures() + "x" + weights.inFeatures() + " of "
                    + weights.bits() + " bits do not fit a " + fp32.outFeatures() + "x" + fp32.inFeatures() + " layer of "
                    + scheme.weightBits() + "-bit weights");
        }
        return new LowBitLinear(weights, fp32.bias(), scheme.activationBits(), scheme.activationRanges(),
                clusterEnds.clone(), clusterMin.clone(), clusterMax.clone(), gather == null ? null : gather.clone());
    }

    public static LowBitLinear restore(Map<String, String> settings, Map<String, MemorySegment> tensors, Arena arena) {
        PackedWeights weights = PackedWeights.restore(settings, tensors, arena);
        int activationBits = StoredLinears.intSetting(settings, "activation_bits");
        ActivationRanges ranges = ActivationRanges.valueOf(StoredLinears.setting(settings, "activation_ranges"));
        int clusters = StoredLinears.intSetting(settings, "clusters");
        int[] ends = StoredLinears.copy(tensors, "cluster_ends", 4L * clusters, arena).toArray(ValueLayout.JAVA_INT);
        float[] min = StoredLinears.copy(tensors, "cluster_min", 4L * clusters, arena).toArray(ValueLayout.JAVA_FLOAT);
        float[] max = StoredLinears.copy(tensors, "cluster_max", 4L * clusters, arena).toArray(ValueLayout.JAVA_FLOAT);
        int[] gather = tensors.containsKey("gather")
                ? StoredLinears.copy(tensors, "gather", 4L * weights.inFeatures(), arena).toArray(ValueLayout.JAVA_INT)
                : null;
        MemorySegment bias = tensors.containsKey("bias")
                ? StoredLinears.copy(tensors, "bias", (long) weights.outFeatures() * Float.BYTES, arena) : null;
        return new LowBitLinear(weights, bias, activationBits, ranges, ends, min, max, gather);
    }

    @Override
    public String kind() {
        return KIND;
    }

    @Override
    public List<Tensor> tensors() {
        List<Tensor> list = new ArrayList<>();
        weights.tensors(list);
        if (bias != null) {
            list.add(new Tensor("bias", DType.F32, new long[]{weights.outFeatures()}, bias));
        }
        long clusters = clusterEnds.length;
        list.add(new Tensor("cluster_ends", DType.I32, new long[]{clusters}, MemorySegment.ofArray(clusterEnds)));
        list.add(new Tensor("cluster_min", DType.F32, new long[]{clusters}, MemorySegment.ofArray(clusterMin)));
        list.add(new Tensor("cluster_max", DType.F32, new long[]{clusters}, MemorySegment.ofArray(clusterMax)));
        if (gather != null) {
            list.add(new Tensor("gather", DType.I32, new long[]{gather.length}, MemorySegment.ofArray(gather)));
        }
        return list;
    }

    @Override
    public Map<String, String> settings() {
        Map<String, String> settings = new HashMap<>();
        weights.settings(settings);
        settings.put("activation_bits", Integer.toString(activationBits));
        settings.put("activation_ranges", ranges.name());
        settings.put("clusters", Integer.toString(clusterEnds.length));
        return Map.copyOf(settings);
    }

    @Override
    public void apply(MemorySegment in, int rows, MemorySegment out) {
        if (rows <= 0) {
            return;
        }
        int n = weights.outFeatures();
        int k = weights.inFeatures();
        int clusters = clusterEnds.length;
        Scratch scratch = SCRATCH.get();
        scratch.ensure((long) rows * k, (long) n * k, 4L * rows * n, rows * clusters);
        float[] scales = scratch.scales;
        int[] zeros = scratch.zeros;
        MemorySegment codes = scratch.codes;
        CpuParallelism.forEach(Math.ceilDiv(rows, ROWS_PER_TASK), t -> {
            for (int i = t * ROWS_PER_TASK, end = Math.min(rows, i + ROWS_PER_TASK); i < end; i++) {
                quantizeRow(in, i, rows, codes, scales, zeros);
            }
        });
        unpackWeights(scratch.weights);
        MemorySegment acc = scratch.acc;
        for (int s = 0; s < segmentStart.length; s++) {
            int from = segmentStart[s];
            int len = segmentEnd[s] - from;
            Int8MatMul.matmul(codes.asSlice((long) rows * from, (long) rows * len),
                    scratch.weights.asSlice((long) n * from, (long) n * len), acc, rows, n, len);
            int segment = s;
            CpuParallelism.forEach(Math.ceilDiv(rows, ROWS_PER_TASK), t -> {
                for (int i = t * ROWS_PER_TASK, end = Math.min(rows, i + ROWS_PER_TASK); i < end; i++) {
                    accumulate(segment, i, acc, scales, zeros, out);
                }
            });
        }
    }

    /** Row {@code i}'s codes, written into each segment's (rows, len) block, and its scales and zero points. */
    private void quantizeRow(MemorySegment in, int i, int rows, MemorySegment codes, float[] scales, int[] zeros) {
        int k = weights.inFeatures();
        int clusters = clusterEnds.length;
        long base = (long) i * k;
        if (ranges == ActivationRanges.PER_TOKEN_DYNAMIC) {
            float min = Float.POSITIVE_INFINITY;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < k; j++) {
                float v = in.getAtIndex(F32, base + j);
                min = Math.min(min, v);
                max = Math.max(max, v);
            }
            float[] sz = scaleAndZero(min, max);
            for (int c = 0; c < clusters; c++) {
                scales[i * clusters + c] = sz[0];
                zeros[i * clusters + c] = (int) sz[1];
            }
        } else {
            System.arraycopy(staticScale, 0, scales, i * clusters, clusters);
            System.arraycopy(staticZero, 0, zeros, i * clusters, clusters);
        }
        for (int s = 0; s < segmentStart.length; s++) {
            int c = segmentCluster[s];
            float inverse = 1f / scales[i * clusters + c];
            float zero = zeros[i * clusters + c];
            int from = segmentStart[s];
            int len = segmentEnd[s] - from;
            long dst = (long) rows * from + (long) i * len;
            for (int p = 0; p < len; p++) {
                int channel = gather == null ? from + p : gather[from + p];
                float q = (float) Math.rint(in.getAtIndex(F32, base + channel) * inverse) + zero;
                codes.set(ValueLayout.JAVA_BYTE, dst + p, (byte) Math.clamp(q, lo, hi));
            }
        }
    }

    /** Weight codes less zero points in the activations' blocked layout: segment s is (N, len_s) at offset N·start_s. */
    private void unpackWeights(MemorySegment blocks) {
        int n = weights.outFeatures();
        int k = weights.inFeatures();
        CpuParallelism.forEach(Math.ceilDiv(n, ROWS_PER_TASK), t -> {
            byte[] row = new byte[k];
            for (int j = t * ROWS_PER_TASK, end = Math.min(n, j + ROWS_PER_TASK); j < end; j++) {
                weights.unpackRow(j, row);
                for (int s = 0; s < segmentStart.length; s++) {
                    int from = segmentStart[s];
                    int len = segmentEnd[s] - from;
                    MemorySegment.copy(row, from, blocks, ValueLayout.JAVA_BYTE, (long) n * from + (long) j * len, len);
                }
            }
        });
    }

    private void accumulate(int s, int i, MemorySegment acc, float[] scales, int[] zeros, MemorySegment out) {
        int n = weights.outFeatures();
        int clusters = clusterEnds.length;
        float scale = scales[i * clusters + segmentCluster[s]];
        long zero = zeros[i * clusters + segmentCluster[s]];
        float[] weightScale = segmentWeightScale[s];
        int[] rowSum = segmentRowSum[s];
        long base = (long) i * n;
        boolean first = s == 0;
        for (int j = 0; j < n; j++) {
            long exact = acc.getAtIndex(I32, base + j) - zero * rowSum[j];
            float term = (float) exact * (scale * weightScale[j]);
            float previous = first ? (bias == null ? 0f : bias.getAtIndex(F32, j)) : out.getAtIndex(F32, base + j);
            out.setAtIndex(F32, base + j, previous + term);
        }
    }

    /**
     * Asymmetric scale and integer zero point mapping [min, max] onto [lo, hi]: {@code s = (max − min) / (hi − lo)},
     * {@code z = lo − rint(min / s)}. The range need not contain 0 (a shifted cluster keeps its whole code
     * range); a range narrower than {@link #MIN_RELATIVE_RANGE} of its magnitude is widened so z stays bounded.
     *
     * @return {scale, zero point}
     */
    private float[] scaleAndZero(float min, float max) {
        return scaleAndZero(min, max, lo, hi);
    }

    /**
     * {@link #scaleAndZero(float, float)} for codes {@code [lo, hi]}: what a static range turns into, for code that
     * predicts this layer's rounding ({@link ClusterRangeSearch}).
     */
    static float[] scaleAndZero(float min, float max, int lo, int hi) {
        float magnitude = Math.max(Math.abs(min), Math.abs(max));
        float width = Math.max(max - min, magnitude * MIN_RELATIVE_RANGE);
        if (!(width > 0f) || !Float.isFinite(width)) {
            return new float[] {1f, lo}; // an all-zero range: every code is lo, dequantized 0
        }
        float scale = width / (hi - lo);
        return new float[] {scale, (float) (lo - Math.rint(min / scale))};
    }

    /** Smallest signed activation code at {@code bits} (8 bits: −127, since Int8MatMul excludes −128). */
    static int lowestCode(int bits) {
        return bits == 8 ? -127 : -(1 << (bits - 1));
    }

    /** Largest signed activation code at {@code bits}. */
    static int highestCode(int bits) {
        return bits == 8 ? 127 : (1 << (bits - 1)) - 1;
    }

    /** The activations as this layer sees them after quantization, dequantized: (rows, K) in position order. */
    float[] fakeQuantizedInput(MemorySegment in, int rows) {
        int k = weights.inFeatures();
        int clusters = clusterEnds.length;
        MemorySegment codes = Arena.ofAuto().allocate((long) rows * k);
        float[] scales = new float[rows * clusters];
        int[] zeros = new int[rows * clusters];
        for (int i = 0; i < rows; i++) {
            quantizeRow(in, i, rows, codes, scales, zeros);
        }
        float[] x = new float[rows * k];
        for (int s = 0; s < segmentStart.length; s++) {
            int from = segmentStart[s];
            int len = segmentEnd[s] - from;
            for (int i = 0; i < rows; i++) {
                int c = segmentCluster[s];
                for (int p = 0; p < len; p++) {
                    int q = codes.get(ValueLayout.JAVA_BYTE, (long) rows * from + (long) i * len + p);
                    x[i * k + from + p] = scales[i * clusters + c] * (q - zeros[i * clusters + c]);
                }
            }
        }
        return x;
    }

    @Override
    public int inFeatures() {
        return weights.inFeatures();
    }

    @Override
    public int outFeatures() {
        return weights.outFeatures();
    }

    public PackedWeights weights() {
        return weights;
    }

    public int activationBits() {
        return activationBits;
    }

    public ActivationRanges activationRanges() {
        return ranges;
    }

    /** K-blocks the GEMM is split into (clusters ∩ weight groups). */
    public int segments() {
        return segmentStart.length;
    }

    /** Bytes of the stored layer: packed weights, bias and the per-cluster tables. */
    public long bytes() {
        long tables = 12L * clusterEnds.length + (gather == null ? 0 : 4L * gather.length);
        return weights.bytes() + (bias == null ? 0 : 4L * weights.outFeatures()) + tables;
    }
}
