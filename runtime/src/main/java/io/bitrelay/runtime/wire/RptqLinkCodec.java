package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.quant.BitPacking;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.wire.FrameException.Reason;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * RPTQ-style INT4 / INT3 link codec (Yuan et al., arXiv 2304.01089): channels are gathered into the
 * {@link ClusterPlan}'s order, so each cluster of channels with similar calibration ranges is contiguous,
 * and each cluster is quantized asymmetrically with its own scale s and minimum m:
 * {@code q = round((x - m) / s)} in {@code [0, 2^bits - 1]}, decoded as {@code q × s + m} and scattered
 * back, so stages exchange activations in the model's channel order.
 *
 * <p><b>Ranges.</b> {@link Ranges#DYNAMIC} (the default) computes (s, m) per token and per cluster at
 * encode time from that token's values; {@link Ranges#STATIC} uses the plan's calibrated cluster ranges,
 * as the paper does inside the model. Dynamic costs 4 bytes per token per cluster, and buys: no clipping
 * (every element within s / 2 of its value), and steps fitted to each token rather than to the union of
 * all calibration tokens, which matters most for the small outlier clusters (a few channels whose range
 * within one token is narrow, but whose calibrated union is wide). A link frame also mixes tokens of
 * different sequences and positions, whose magnitudes differ. On {@code SyntheticActivations} at hidden
 * 768 with 8 clusters, dynamic INT4 has ~16–30× lower MSE than static INT4, and dynamic INT3, which is
 * smaller on the wire than static INT4, still ~3–6× lower; the price is 32 bytes per token at 8 clusters:
 * 8% of an INT4 row at hidden 768 (fp16 / int4 frame bytes 3.69 instead of 4.00 for a 128-token prefill),
 * under 1% at 12288. The mode is not on the wire: both ends build the codec with the same one, and a
 * reader with the other mode refuses the frame's params length (BAD_SIZES).
 *
 * <pre>
 *  params, little-endian
 *  +------------------------------+--------------------------------------------------------------+
 *  | plan fingerprint (u32)       | DYNAMIC only: rows × clusters × { scale (f16) | minimum (f16) } |
 *  +------------------------------+--------------------------------------------------------------+
 *  payload: per row, the row's values in plan order, packed by {@link BitPacking} (bits × width / 8
 *  bytes rounded up per row: 4 bits two per byte, 3 bits eight per three bytes)
 * </pre>
 *
 * <p>Dynamic (s, m) are chosen on the FP16 grid so nothing clips: m is the largest FP16 ≤ the token's
 * cluster minimum and s the smallest FP16 ≥ (max − m) / (2^bits − 1); values beyond FP16's ±65504 saturate.
 * Static (s, m) are FP32 from the plan; values outside the calibrated range clip to it. NaN and ±Inf are
 * refused at encode. A reader refuses frames encoded with another plan ({@link #checkParams}).
 */
public final class RptqLinkCodec implements LinkCodec {

    /** Where each cluster's scale and minimum come from. */
    public enum Ranges {
        /** Per token and cluster, from the values being sent: 4 params bytes per token per cluster. */
        DYNAMIC,
        /** Per cluster, from the plan's calibration ranges: no per-token params; out-of-range values clip. */
        STATIC
    }

    public static final int PLAN_TAG_BYTES = 4;
    /** FP16 scale then FP16 minimum, per token and cluster (DYNAMIC). */
    public static final int CLUSTER_PARAMS_BYTES = 4;

    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
    /** As many byte lanes as FLOATS has float lanes; null where no such shape exists (then scalar only). */
    private static final VectorSpecies<Byte> BYTES = FLOATS.length() >= 8
            ? VectorSpecies.of(byte.class, VectorShape.forBitSize(FLOATS.length() * Byte.SIZE))
            : null;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final float FP16_MAX = 65504f;
    private static final short FP16_MAX_BITS = 0x7bff;
    /** 1.5 × 2^23: adding then subtracting it rounds |y| < 2^22 to an integer, ties to even. */
    private static final float RINT_MAGIC = 12_582_912f;

    private final CodecId id;
    private final ClusterPlan plan;
    private final Ranges ranges;
    private final int bits;
    private final int levels;               // 2^bits - 1: the largest code
    private final int width;                // channels, the plan's width
    private final int clusters;
    private final int rowPayloadBytes;
    private final int[] permutation;        // (width) channel at each plan position
    private final int[] inversePermutation; // (width) plan position of each channel
    private final boolean identityOrder;    // a one-cluster baseline plan: no gather or scatter
    private final int[] clusterStarts;      // (clusters + 1) plan positions; the last is width
    private final float[] staticScale;      // (clusters) STATIC: (max - min) / levels
    private final float[] staticMin;        // (clusters) STATIC: calibrated minimum
    private final ThreadLocal<Scratch> scratch;

    /** Per-thread row buffers, so a shared codec allocates nothing per frame. */
    private static final class Scratch {
        final float[] row;      // (width) one row in channel order
        final float[] permuted; // (width) the same row in plan order
        final byte[] codes;     // (width) codes in plan order, one per byte
        final float[] range = new float[2]; // {min, max} of one cluster of one row

        Scratch(int width) {
            row = new float[width];
            permuted = new float[width];
            codes = new byte[width];
        }
    }

    public RptqLinkCodec(CodecId id, ClusterPlan plan) {
        this(id, plan, Ranges.DYNAMIC);
    }

    public RptqLinkCodec(CodecId id, ClusterPlan plan, Ranges ranges) {
        this.bits = switch (id) {
            case INT4_RPTQ -> 4;
            case INT3_RPTQ -> 3;
            default -> throw new IllegalArgumentException("RptqLinkCodec encodes " + CodecId.INT4_RPTQ + " or "
                    + CodecId.INT3_RPTQ + ", not " + id);
        };
        this.id = id;
        this.plan = plan;
        this.ranges = ranges;
        this.levels = (1 << bits) - 1;
        this.width = plan.width();
        this.clusters = plan.clusters();
        this.rowPayloadBytes = Math.toIntExact(BitPacking.packedBytes(width, bits));
        this.permutation = plan.permutation();
        this.inversePermutation = plan.inversePermutation();
        boolean identity = true;
        for (int j = 0; j < width; j++) {
            identity &= permutation[j] == j;
        }
        this.identityOrder = identity;
        this.clusterStarts = new int[clusters + 1];
        this.staticScale = new float[clusters];
        this.staticMin = new float[clusters];
        for (int c = 0; c < clusters; c++) {
            clusterStarts[c] = plan.clusterStart(c);
            staticMin[c] = plan.clusterMin(c);
            staticScale[c] = (plan.clusterMax(c) - plan.clusterMin(c)) / levels;
        }
        clusterStarts[clusters] = width;
        this.scratch = ThreadLocal.withInitial(() -> new Scratch(width));
    }

    public static RptqLinkCodec int4(ClusterPlan plan) {
        return new RptqLinkCodec(CodecId.INT4_RPTQ, plan);
    }

    public static RptqLinkCodec int3(ClusterPlan plan) {
        return new RptqLinkCodec(CodecId.INT3_RPTQ, plan);
    }

    @Override
    public CodecId id() {
        return id;
    }

    public ClusterPlan plan() {
        return plan;
    }

    public Ranges ranges() {
        return ranges;
    }

    public int bits() {
        return bits;
    }

    @Override
    public int paramsBytes(int rows, int width) {
        return ranges == Ranges.STATIC ? PLAN_TAG_BYTES
                : Math.addExact(PLAN_TAG_BYTES, Math.multiplyExact(Math.multiplyExact(rows, clusters), CLUSTER_PARAMS_BYTES));
    }

    /** A function of the shape alone, as a reader needs; a width other than the plan's fails in checkParams. */
    @Override
    public long payloadBytes(int rows, int width) {
        return (long) rows * BitPacking.packedBytes(width, bits);
    }

    @Override
    public void checkParams(MemorySegment params, int rows, int width) {
        int carried = params.get(I32_LE, 0);
        if (carried != plan.fingerprint()) {
            throw new FrameException(Reason.UNKNOWN_CODEC, String.format("%s frame was encoded with cluster plan"
                    + " %08x, this node has plan %08x", id, carried, plan.fingerprint()));
        }
        if (width != this.width) {
            throw new FrameException(Reason.UNKNOWN_CODEC, id + " frame has width " + width + ", the cluster plan "
                    + "is for width " + this.width);
        }
    }

    /** The scale of {@code cluster} in {@code row} of an encoded frame: the step between adjacent codes. */
    public float scale(MemorySegment params, int row, int cluster) {
        return ranges == Ranges.STATIC ? staticScale[cluster]
                : Float.float16ToFloat(params.get(F16_LE, clusterParamsOffset(row, cluster)));
    }

    /** The value that code 0 decodes to, for {@code cluster} in {@code row}. */
    public float minimum(MemorySegment params, int row, int cluster) {
        return ranges == Ranges.STATIC ? staticMin[cluster]
                : Float.float16ToFloat(params.get(F16_LE, clusterParamsOffset(row, cluster) + 2));
    }

    @Override
    public void encode(MemorySegment activations, int rows, int width, MemorySegment params, MemorySegment payload) {
        requirePlanWidth(width);
        params.set(I32_LE, 0, plan.fingerprint());
        Scratch s = scratch.get();
        for (int row = 0; row < rows; row++) {
            MemorySegment.copy(activations, F32, (long) row * width * Float.BYTES, s.row, 0, width);
            float[] permuted = gather(s.row, permutation, s.permuted);
            for (int c = 0; c < clusters; c++) {
                int from = clusterStarts[c];
                int to = clusterStarts[c + 1];
                float[] range = minMax(permuted, from, to, s.range);
                if (!Float.isFinite(range[0]) || !Float.isFinite(range[1])) {
                    throw new IllegalArgumentException("row " + row + " of the activations holds non-finite values"
                            + " (cluster " + c + " spans [" + range[0] + ", " + range[1] + "]); the " + id
                            + " link codec cannot carry them");
                }
                float scale;
                float minimum;
                if (ranges == Ranges.STATIC) {
                    scale = staticScale[c];
                    minimum = staticMin[c];
                } else {
                    short minimumBits = fp16AtMost(range[0]);
                    minimum = Float.float16ToFloat(minimumBits);
                    short scaleBits = fp16ScaleAtLeast((range[1] - minimum) / levels);
                    scale = Float.float16ToFloat(scaleBits);
                    long offset = clusterParamsOffset(row, c);
                    params.set(F16_LE, offset, scaleBits);
                    params.set(F16_LE, offset + 2, minimumBits);
                }
                quantize(permuted, from, to, minimum, scale, levels, s.codes);
            }
            BitPacking.pack(bits, s.codes, 0, width, payload, (long) row * rowPayloadBytes);
        }
    }

    @Override
    public void decode(MemorySegment params, MemorySegment payload, int rows, int width, MemorySegment out) {
        requirePlanWidth(width);
        Scratch s = scratch.get();
        for (int row = 0; row < rows; row++) {
            BitPacking.unpack(bits, payload, (long) row * rowPayloadBytes, s.codes, 0, width);
            float[] permuted = identityOrder ? s.row : s.permuted;
            for (int c = 0; c < clusters; c++) {
                dequantize(s.codes, clusterStarts[c], clusterStarts[c + 1], minimum(params, row, c),
                        scale(params, row, c), permuted);
            }
            float[] inChannelOrder = gather(permuted, inversePermutation, s.row);
            MemorySegment.copy(inChannelOrder, 0, out, F32, (long) row * width * Float.BYTES, width);
        }
    }

    private long clusterParamsOffset(int row, int cluster) {
        return PLAN_TAG_BYTES + ((long) row * clusters + cluster) * CLUSTER_PARAMS_BYTES;
    }

    private void requirePlanWidth(int width) {
        if (width != this.width) {
            throw new IllegalArgumentException(id + " codec's cluster plan is for width " + this.width + ", got "
                    + width);
        }
    }

    /**
     * {@code dst[j] = src[index[j]]}; with the identity order, src itself. Scalar on purpose: the Vector API's
     * indexed load (FloatVector.fromArray with an index map) measured 12× slower than this loop on AVX2.
     */
    private float[] gather(float[] src, int[] index, float[] dst) {
        if (identityOrder) {
            return src;
        }
        for (int j = 0; j < index.length; j++) {
            dst[j] = src[index[j]];
        }
        return dst;
    }

    /**
     * {min, max} of {@code x[from, to)} into {@code range}; NaN propagates. A cluster wider than one vector
     * ends with a vector overlapping the previous one (min and max do not mind seeing values twice).
     */
    private static float[] minMax(float[] x, int from, int to, float[] range) {
        float min = Float.POSITIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        if (to - from >= FLOATS.length()) {
            FloatVector vMin = FloatVector.fromArray(FLOATS, x, to - FLOATS.length());
            FloatVector vMax = vMin;
            for (int i = from; i + FLOATS.length() <= to; i += FLOATS.length()) {
                FloatVector v = FloatVector.fromArray(FLOATS, x, i);
                vMin = vMin.min(v);
                vMax = vMax.max(v);
            }
            min = vMin.reduceLanes(VectorOperators.MIN);
            max = vMax.reduceLanes(VectorOperators.MAX);
        } else {
            for (int i = from; i < to; i++) {
                min = Math.min(min, x[i]);
                max = Math.max(max, x[i]);
            }
        }
        range[0] = min;
        range[1] = max;
        return range;
    }

    /**
     * codes[i] = rint(clamp((x[i] - minimum) × (1 / scale), 0, levels)); all 0 when scale is 0. The
     * reciprocal is off by at most an FP32 ulp, so codes still land within scale / 2 (plus ~1e-7 relative).
     * A cluster wider than one vector ends with a vector overlapping the previous one, which rewrites a few
     * codes with the same values instead of running a scalar tail at every cluster boundary.
     */
    static void quantize(float[] x, int from, int to, float minimum, float scale, int levels, byte[] codes) {
        if (scale == 0f) {
            Arrays.fill(codes, from, to, (byte) 0);
            return;
        }
        float reciprocal = 1f / scale;
        if (BYTES != null && to - from >= FLOATS.length()) {
            for (int i = from; ; i += FLOATS.length()) {
                int at = Math.min(i, to - FLOATS.length());
                FloatVector q = FloatVector.fromArray(FLOATS, x, at).sub(minimum).mul(reciprocal)
                        .max(0f).min(levels).add(RINT_MAGIC).sub(RINT_MAGIC);
                ((ByteVector) q.castShape(BYTES, 0)).intoArray(codes, at);
                if (at == to - FLOATS.length()) {
                    return;
                }
            }
        }
        for (int i = from; i < to; i++) {
            float y = Math.min(levels, Math.max(0f, (x[i] - minimum) * reciprocal));
            codes[i] = (byte) ((y + RINT_MAGIC) - RINT_MAGIC);
        }
    }

    /** x[i] = codes[i] × scale + minimum; a cluster wider than one vector ends with an overlapping vector. */
    static void dequantize(byte[] codes, int from, int to, float minimum, float scale, float[] x) {
        if (BYTES != null && to - from >= FLOATS.length()) {
            for (int i = from; ; i += FLOATS.length()) {
                int at = Math.min(i, to - FLOATS.length());
                ((FloatVector) ByteVector.fromArray(BYTES, codes, at).castShape(FLOATS, 0)).mul(scale).add(minimum)
                        .intoArray(x, at);
                if (at == to - FLOATS.length()) {
                    return;
                }
            }
        }
        for (int i = from; i < to; i++) {
            x[i] = codes[i] * scale + minimum;
        }
    }

    /** FP16 bits of the largest FP16 value ≤ v, v clamped to ±65504 first. */
    static short fp16AtMost(float v) {
        float clamped = Math.max(-FP16_MAX, Math.min(FP16_MAX, v));
        short bits = Float.floatToFloat16(clamped);
        if (Float.float16ToFloat(bits) <= clamped) {
            return bits;
        }
        // one FP16 step down: positive patterns are ordered like their values, negative ones (sign bit set)
        // grow in magnitude as the pattern grows, and below +0 comes the smallest negative subnormal
        if (bits == 0) {
            return (short) 0x8001;
        }
        return (short) (bits > 0 ? bits - 1 : bits + 1);
    }

    /** FP16 bits of the smallest FP16 value ≥ wanted (≥ 0), capped at 65504; 0 only for 0. */
    static short fp16ScaleAtLeast(float wanted) {
        if (wanted <= 0f) {
            return 0;
        }
        if (wanted >= FP16_MAX) {
            return FP16_MAX_BITS;
        }
        short bits = Float.floatToFloat16(wanted);
        if (Float.float16ToFloat(bits) < wanted) {
            bits++;
        }
        return bits;
    }
}
