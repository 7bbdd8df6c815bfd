package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.synthetic.SyntheticActivations;
import io.bitrelay.runtime.wire.RptqLinkCodec.Ranges;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static io.bitrelay.runtime.wire.WireTestData.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class RptqLinkCodecTest {
    private static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int HIDDEN = 768;
    private static final int CALIBRATION_ROWS = 256;

    /** A plan from calibration rows of the same distribution as {@link WireTestData#hiddenStates}. */
    private static ClusterPlan planFor(int width, int clusters) {
        return new ChannelClustering(clusters).plan(hiddenStates(64, width, 1_000 + width), 64, width);
    }

    private static ClusterPlan llmLikePlan(int width, int clusters) {
        return new ChannelClustering(clusters).plan(
                SyntheticActivations.llmLike(CALIBRATION_ROWS, width, 1), CALIBRATION_ROWS, width);
    }

    @Test
    void shouldSizeParamsPerTokenAndClusterAndPackPayloadPerRow() {
        ClusterPlan plan = llmLikePlan(HIDDEN, 8);
        assertEquals(8, plan.clusters());
        RptqLinkCodec int4 = RptqLinkCodec.int4(plan);
        RptqLinkCodec int3 = RptqLinkCodec.int3(plan);
        assertEquals(4 + 17 * 8 * 4, int4.paramsBytes(17, HIDDEN));
        assertEquals(17L * 384, int4.payloadBytes(17, HIDDEN));
        assertEquals(17L * 288, int3.payloadBytes(17, HIDDEN));
        assertEquals(3L * 5, int3.payloadBytes(3, 13)); // 39 bits per row, rounded up to 5 bytes
        RptqLinkCodec staticInt4 = new RptqLinkCodec(CodecId.INT4_RPTQ, plan, Ranges.STATIC);
        assertEquals(4, staticInt4.paramsBytes(17, HIDDEN));
        assertThrows(ArithmeticException.class, () -> int4.paramsBytes(Integer.MAX_VALUE, HIDDEN));
        assertThrows(IllegalArgumentException.class, () -> new RptqLinkCodec(CodecId.INT8, plan));
    }

    @Test
    void shouldStayWithinHalfAScalePerElementPerClusterOverOddShapes() {
        for (CodecId id : new CodecId[] {CodecId.INT4_RPTQ, CodecId.INT3_RPTQ}) {
            for (int width : WIDTHS) {
                ClusterPlan plan = planFor(width, 8);
                RptqLinkCodec codec = new RptqLinkCodec(id, plan);
                for (int rows : ROWS) {
                    float[] values = hiddenStates(rows, width, 31L * rows + width);
                    Encoded encoded = Encoded.of(codec, values, rows, width);
                    float[] decoded = encoded.decode();
                    for (int row = 0; row < rows; row++) {
                        for (int channel = 0; channel < width; channel++) {
                            int r = row;
                            int ch = channel;
                            int cluster = plan.clusterOfChannel(ch);
                            float scale = codec.scale(encoded.params, r, cluster);
                            float minimum = codec.minimum(encoded.params, r, cluster);
                            float x = values[r * width + ch];
                            float y = decoded[r * width + ch];
                            // s / 2 from rounding to a code; the rest is FP32 rounding of (x - m) / s and q × s + m
                            double bound = scale * 0.5 * (1 + 1e-4) + 2 * Math.ulp(Math.abs(x) + Math.abs(minimum));
                            assertTrue(Math.abs(x - y) <= bound, () -> id + " " + rows + " × " + width + " row " + r
                                    + " channel " + ch + ": " + x + " decoded as " + y + ", scale " + scale);
                        }
                    }
                }
            }
        }
    }

    @Test
    void shouldPickFp16ScalesAndMinimaThatClipNothing() {
        ClusterPlan plan = planFor(1000, 8);
        RptqLinkCodec codec = RptqLinkCodec.int3(plan);
        float[] values = hiddenStates(17, 1000, 5);
        Encoded encoded = Encoded.of(codec, values, 17, 1000);
        int[] permutation = plan.permutation();
        for (int r = 0; r < 17; r++) {
            for (int c = 0; c < plan.clusters(); c++) {
                float lo = Float.POSITIVE_INFINITY;
                float hi = Float.NEGATIVE_INFINITY;
                for (int j = plan.clusterStart(c); j < plan.clusterEnd(c); j++) {
                    lo = Math.min(lo, values[r * 1000 + permutation[j]]);
                    hi = Math.max(hi, values[r * 1000 + permutation[j]]);
                }
                float scale = codec.scale(encoded.params, r, c);
                float minimum = codec.minimum(encoded.params, r, c);
                assertTrue(minimum <= lo, "minimum " + minimum + " at or below the cluster's lowest value " + lo);
                assertTrue(minimum + 7 * scale >= hi - Math.abs(hi) * 1e-6f, "top code reaches " + hi);
            }
        }
    }

    @Test
    void shouldMatchANaiveReferenceByteForByte() {
        for (CodecId id : new CodecId[] {CodecId.INT4_RPTQ, CodecId.INT3_RPTQ}) {
            for (int width : WIDTHS) {
                ClusterPlan plan = planFor(width, 5);
                RptqLinkCodec codec = new RptqLinkCodec(id, plan);
                int rows = 3;
                float[] values = hiddenStates(rows, width, 11L * width);
                Encoded encoded = Encoded.of(codec, values, rows, width);
                Reference reference = Reference.encode(plan, codec.bits(), values, rows, width);
                assertArrayEquals(reference.params, encoded.params.toArray(ValueLayout.JAVA_BYTE), id + " params, width " + width);
                assertArrayEquals(reference.payload, encoded.payload.toArray(ValueLayout.JAVA_BYTE), id + " payload, width " + width);
                assertArrayEquals(reference.decode(plan, codec.bits(), rows, width), encoded.decode(), id + " decoded, width " + width);
            }
        }
    }

    @Test
    void shouldEqualPlainPerTokenQuantizationWithAOneClusterPlan() {
        int rows = 32;
        float[] values = SyntheticActivations.llmLike(rows, HIDDEN, 2);
        RptqLinkCodec oneCluster = RptqLinkCodec.int4(ClusterPlan.identity(HIDDEN, -1, 1));
        float[] decoded = Encoded.of(oneCluster, values, rows, HIDDEN).decode();
        float[] baseline = PerTokenInt4.roundTrip(values, rows, HIDDEN);
        double ratio = mse(values, decoded) / mse(values, baseline);
        assertTrue(ratio > 0.9 && ratio < 1.15, "one-cluster RPTQ vs per-token baseline MSE ratio " + ratio);
    }

    /**
     * The reason for RPTQ: with a few channels 50× larger and some shifted by +10, one range per token wastes
     * almost every code on the outliers; per-cluster ranges keep the ordinary channels' steps small.
     */
    @Test
    void shouldCutErrorOnActivationsWithOutliersFarBelowPlainPerTokenInt4() {
        int rows = 64;
        float[] values = SyntheticActivations.llmLike(rows, HIDDEN, 2); // calibration used seed 1
        ClusterPlan plan = llmLikePlan(HIDDEN, 8);
        double perToken = mse(values, PerTokenInt4.roundTrip(values, rows, HIDDEN));
        double rptq4 = mse(values, Encoded.of(RptqLinkCodec.int4(plan), values, rows, HIDDEN).decode());
        double rptq3 = mse(values, Encoded.of(RptqLinkCodec.int3(plan), values, rows, HIDDEN).decode());
        double static4 = mse(values, Encoded.of(new RptqLinkCodec(CodecId.INT4_RPTQ, plan, Ranges.STATIC), values,
                rows, HIDDEN).decode());
        double int8 = mse(values, Encoded.of(LinkCodecs.forName("int8"), values, rows, HIDDEN).decode());
        System.out.printf("MSE on LLM-like activations, %d × %d, %d clusters: per-token int4 %.4g, rptq int4 %.4g"
                        + " (%.1f× lower), rptq int3 %.4g (%.1f× lower), rptq int4 static %.4g, per-token int8 %.4g%n",
                rows, HIDDEN, plan.clusters(), perToken, rptq4, perToken / rptq4, rptq3, perToken / rptq3, static4, int8);
        assertTrue(rptq4 * 10 <= perToken, "rptq int4 " + rptq4 + " vs per-token int4 " + perToken);
        assertTrue(rptq3 * 3 <= perToken, "rptq int3 " + rptq3 + " vs per-token int4 " + perToken);
        assertTrue(rptq4 * 5 < static4, "per-token ranges beat calibrated ones: " + rptq4 + " vs " + static4);
        assertTrue(rptq3 < static4, "dynamic int3, fewer bytes than static int4, is still more accurate: " + rptq3
                + " vs " + static4);
    }

    @Test
    void shouldClipToTheCalibratedRangeWithStaticRanges() {
        ClusterPlan plan = new ClusterPlan(new int[] {0, 1, 2, 3}, new int[] {2, 4}, new float[] {-1, 10},
                new float[] {1, 12});
        RptqLinkCodec codec = new RptqLinkCodec(CodecId.INT4_RPTQ, plan, Ranges.STATIC);
        float[] values = {5f, -0.2f, 11f, 0f};
        Encoded encoded = Encoded.of(codec, values, 1, 4);
        assertEquals(4, encoded.params.byteSize());
        float[] decoded = encoded.decode();
        assertEquals(1f, decoded[0], 1e-6f, "5 clips to the cluster's calibrated max 1");
        assertEquals(-0.2f, decoded[1], 2f / 15 / 2 + 1e-6f);
        assertEquals(11f, decoded[2], 2f / 15 / 2 + 1e-6f);
        assertEquals(10f, decoded[3], 1e-6f, "0 clips to the cluster's calibrated min 10");
    }

    @Test
    void shouldRefuseNonFiniteActivationsAndOtherWidths() {
        ClusterPlan plan = planFor(13, 3);
        RptqLinkCodec codec = RptqLinkCodec.int4(plan);
        float[] values = hiddenStates(2, 13, 3);
        values[13 + 4] = Float.NaN;
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class, () -> Encoded.of(codec, values, 2, 13));
        assertTrue(nan.getMessage().contains("row 1"), nan.getMessage());
        values[13 + 4] = Float.POSITIVE_INFINITY;
        assertThrows(IllegalArgumentException.class, () -> Encoded.of(codec, values, 2, 13));
        IllegalArgumentException width = assertThrows(IllegalArgumentException.class,
                () -> Encoded.of(codec, new float[14], 1, 14));
        assertTrue(width.getMessage().contains("width 13"), width.getMessage());
    }

    @Test
    void shouldDecodeConstantAndHugeRowsWithoutNanOrInfinity() {
        ClusterPlan plan = planFor(7, 2);
        RptqLinkCodec codec = RptqLinkCodec.int4(plan);
        float[] constant = {0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
        float[] decoded = Encoded.of(codec, constant, 1, 7).decode();
        for (float v : decoded) {
            assertEquals(0.1f, v, 1e-6f); // 0.1 is not an FP16 value: m sits just below, s is a subnormal step
        }
        float[] huge = {1e6f, -1e6f, 3e5f, 0f, 1f, -7e4f, 5e5f};
        for (float v : Encoded.of(codec, huge, 1, 7).decode()) {
            assertTrue(Float.isFinite(v), "saturates rather than overflowing: " + v);
        }
    }

    static double mse(float[] expected, float[] actual) {
        double sum = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = (double) expected[i] - actual[i];
            sum += d * d;
        }
        return sum / expected.length;
    }

    /** One frame's params and payload, encoded through the codec under test. */
    record Encoded(LinkCodec codec, MemorySegment params, MemorySegment payload, int rows, int width) {
        static Encoded of(LinkCodec codec, float[] values, int rows, int width) {
            MemorySegment params = zeros(codec.paramsBytes(rows, width));
            MemorySegment payload = zeros(codec.payloadBytes(rows, width));
            codec.encode(segment(values), rows, width, params, payload);
            return new Encoded(codec, params.asSlice(0, codec.paramsBytes(rows, width)),
                    payload.asSlice(0, codec.payloadBytes(rows, width)), rows, width);
        }

        float[] decode() {
            MemorySegment out = zeros((long) rows * width * Float.BYTES);
            codec.decode(params, payload, rows, width, out);
            return floats(out, rows * width);
        }
    }

    /** Per-token asymmetric INT4 without clustering: one (min, max) per row, FP32 scale, no FP16 rounding. */
    static final class PerTokenInt4 {
        static float[] roundTrip(float[] values, int rows, int width) {
            float[] out = new float[values.length];
            for (int r = 0; r < rows; r++) {
                float lo = Float.POSITIVE_INFINITY;
                float hi = Float.NEGATIVE_INFINITY;
                for (int c = 0; c < width; c++) {
                    lo = Math.min(lo, values[r * width + c]);
                    hi = Math.max(hi, values[r * width + c]);
                }
                float scale = (hi - lo) / 15;
                for (int c = 0; c < width; c++) {
                    float q = scale == 0 ? 0 : Math.round((values[r * width + c] - lo) / scale);
                    out[r * width + c] = q * scale + lo;
                }
            }
            return out;
        }
    }

    /** The codec's format written one element and one bit at a time. */
    record Reference(byte[] params, byte[] payload) {
        static Reference encode(ClusterPlan plan, int bits, float[] values, int rows, int width) {
            int levels = (1 << bits) - 1;
            int clusters = plan.clusters();
            int rowBytes = (width * bits + 7) / 8;
            MemorySegment params = MemorySegment.ofArray(new byte[4 + rows * clusters * 4]);
            byte[] payload = new byte[rows * rowBytes];
            params.set(I32_LE, 0, plan.fingerprint());
            int[] permutation = plan.permutation();
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < clusters; c++) {
                    float lo = Float.POSITIVE_INFINITY;
                    float hi = Float.NEGATIVE_INFINITY;
                    for (int j = plan.clusterStart(c); j < plan.clusterEnd(c); j++) {
                        lo = Math.min(lo, values[r * width + permutation[j]]);
                        hi = Math.max(hi, values[r * width + permutation[j]]);
                    }
                    short minimumBits = largestFp16AtMost(lo);
                    float minimum = Float.float16ToFloat(minimumBits);
                    short scaleBits = smallestFp16AtLeast((hi - minimum) / levels);
                    float scale = Float.float16ToFloat(scaleBits);
                    params.set(F16_LE, 4 + (r * clusters + c) * 4L, scaleBits);
                    params.set(F16_LE, 4 + (r * clusters + c) * 4L + 2, minimumBits);
                    for (int j = plan.clusterStart(c); j < plan.clusterEnd(c); j++) {
                        float x = values[r * width + permutation[j]];
                        int q = scale == 0 ? 0 : (int) Math.rint(Math.min(levels, Math.max(0f, (x - minimum) * (1f / scale))));
                        for (int b = 0; b < bits; b++) {
                            int bit = j * bits + b;
                            if ((q >> b & 1) != 0) {
                                payload[r * rowBytes + bit / 8] |= (byte) (1 << bit % 8);
                            }
                        }
                    }
                }
            }
            return new Reference(params.toArray(ValueLayout.JAVA_BYTE), payload);
        }

        float[] decode(ClusterPlan plan, int bits, int rows, int width) {
            int clusters = plan.clusters();
            int rowBytes = (width * bits + 7) / 8;
            MemorySegment p = MemorySegment.ofArray(params);
            float[] out = new float[rows * width];
            int[] permutation = plan.permutation();
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < clusters; c++) {
                    float scale = Float.float16ToFloat(p.get(F16_LE, 4 + (r * clusters + c) * 4L));
                    float minimum = Float.float16ToFloat(p.get(F16_LE, 4 + (r * clusters + c) * 4L + 2));
                    for (int j = plan.clusterStart(c); j < plan.clusterEnd(c); j++) {
                        int q = 0;
                        for (int b = 0; b < bits; b++) {
                            int bit = j * bits + b;
                            q |= (payload[r * rowBytes + bit / 8] >> bit % 8 & 1) << b;
                        }
                        out[r * width + permutation[j]] = q * scale + minimum;
                    }
                }
            }
            return out;
        }

        /** Searches the FP16 grid: every finite FP16 value, in order of value. */
        private static short largestFp16AtMost(float v) {
            short best = (short) 0xfbff; // -65504
            for (int bits = 0; bits < 0x10000; bits++) {
                float f = Float.float16ToFloat((short) bits);
                if (Float.isFinite(f) && f <= v && f > Float.float16ToFloat(best)) {
                    best = (short) bits;
                }
            }
            return best;
        }

        private static short smallestFp16AtLeast(float v) {
            if (v <= 0) {
                return 0;
            }
            short best = (short) 0x7bff; // 65504
            for (int bits = 0; bits < 0x7c00; bits++) {
                float f = Float.float16ToFloat((short) bits);
                if (f >= v && f < Float.float16ToFloat(best)) {
                    best = (short) bits;
                }
            }
            return best;
        }
    }
}
