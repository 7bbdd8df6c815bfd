package io.bitrelay.runtime.model.opt;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Storage of quantized keys and values: error bounds per bit width, packing layout, growth, size. */
@Timeout(30)
class KvCacheQuantizationTest {
    private static final KvPrecision[] QUANTIZED = {KvPrecision.INT8, KvPrecision.INT4, KvPrecision.INT3};

    /** (rows, numHeads × headDim) values; each head gets its own range and offset, one group is constant. */
    private static float[] randomRows(int rows, int numHeads, int headDim, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] x = new float[rows * numHeads * headDim];
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < numHeads; h++) {
                float spread = (float) Math.pow(10, random.nextDouble(-2, 2));
                float offset = (float) random.nextDouble(-3, 3);
                boolean constant = r == 1 && h == 0;
                for (int c = 0; c < headDim; c++) {
                    x[(r * numHeads + h) * headDim + c] = constant ? offset : offset + spread * (float) random.nextGaussian();
                }
            }
        }
        return x;
    }

    private static float[] readAll(KvRows rows, int positions, int numHeads, int headDim) {
        KvRows.HeadReader reader = new KvRows.HeadReader(headDim);
        float[] out = new float[positions * numHeads * headDim];
        for (int p = 0; p < positions; p++) {
            for (int h = 0; h < numHeads; h++) {
                rows.read(p, h, reader);
                MemorySegment.copy(reader.segment, ValueLayout.JAVA_FLOAT, reader.offset * Float.BYTES, out,
                        (p * numHeads + h) * headDim, headDim);
            }
        }
        return out;
    }

    @Test
    void shouldRoundTripEveryGroupWithinHalfAStepForEachBitWidthAndHeadDim() {
        int numHeads = 3;
        int positions = 11;
        for (KvPrecision precision : QUANTIZED) {
            for (int headDim : new int[]{1, 5, 7, 33, 64}) { // 3 bits × 5, 7, 33: codes straddle bytes, groups end mid-byte
                float[] x = randomRows(positions, numHeads, headDim, 31L * headDim + precision.bits());
                MemorySegment source = MemorySegment.ofArray(x);
                float[] back;
                try (Arena arena = Arena.ofConfined()) {
                    QuantizedKvRows rows = new QuantizedKvRows(precision, numHeads, headDim);
                    rows.resize(arena, positions, 0);
                    rows.write(source, 0, 4, 0);               // a prefill of 4 tokens ...
                    for (int p = 4; p < positions; p++) {
                        rows.write(source, p, 1, p);           // ... then decode steps, one token each
                    }
                    back = readAll(rows, positions, numHeads, headDim);
                }
                double worstRelative = 0;
                for (int group = 0; group < positions * numHeads; group++) {
                    float min = Float.POSITIVE_INFINITY;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int c = 0; c < headDim; c++) {
                        min = Math.min(min, x[group * headDim + c]);
                        max = Math.max(max, x[group * headDim + c]);
                    }
                    float scale = (max - min) / precision.maxCode();
                    float rounding = 4 * Math.ulp(Math.max(Math.abs(min), Math.abs(max)));
                    for (int c = 0; c < headDim; c++) {
                        int i = group * headDim + c;
                        float error = Math.abs(x[i] - back[i]);
                        String where = precision + " headDim " + headDim + " group " + group + " channel " + c;
                        assertTrue(error <= scale / 2 + rounding, where + ": error " + error + " > scale/2 " + scale / 2);
                        if (scale > 0) {
                            worstRelative = Math.max(worstRelative, error / scale);
                        }
                        if (x[i] == min) {
                            assertEquals(min, back[i], where + ": the minimum is code 0, exact");
                        }
                    }
                }
                if (headDim >= 33) { // many channels per group: some must land near half a step
                    assertTrue(worstRelative > 0.3, precision + " headDim " + headDim + ": worst error " + worstRelative
                            + " steps, suspiciously exact");
                }
            }
        }
    }

    @Test
    void shouldKeepStoredCodesAndParametersWhenTheCacheGrows() {
        int numHeads = 2;
        int headDim = 7;
        for (KvPrecision precision : QUANTIZED) {
            try (KvCache cache = new KvCache(2, numHeads, headDim, 300, precision)) {
                float[] x = randomRows(150, numHeads, headDim, precision.bits());
                MemorySegment source = MemorySegment.ofArray(x);
                cache.reserve(40);
                for (int layer = 0; layer < 2; layer++) {
                    cache.keyRows(layer).write(source, 0, 40, 0);
                    cache.valueRows(layer).write(source, 40, 40, 0);
                }
                cache.advance(40);
                float[] keysBefore = readAll(cache.keyRows(1), 40, numHeads, headDim);
                float[] valuesBefore = readAll(cache.valueRows(1), 40, numHeads, headDim);
                long bytesBefore = cache.bytes();

                cache.reserve(100); // 140 positions: 64 → 256
                assertEquals(4 * bytesBefore, cache.bytes(), precision + ": capacity doubled twice");
                assertEquals(0, java.util.Arrays.compare(keysBefore, readAll(cache.keyRows(1), 40, numHeads, headDim)),
                        precision + ": keys changed by growth");
                assertEquals(0, java.util.Arrays.compare(valuesBefore, readAll(cache.valueRows(1), 40, numHeads, headDim)),
                        precision + ": values changed by growth");
                cache.keyRows(1).write(source, 40, 100, 40);
                cache.advance(100);
                assertEquals(0, java.util.Arrays.compare(keysBefore, 0, keysBefore.length,
                        readAll(cache.keyRows(1), 140, numHeads, headDim), 0, keysBefore.length), precision + ": append clobbered");
            }
        }
    }

    @Test
    void shouldReportPackedBytesPerTokenAndHeldBytes() {
        // OPT heads of 64 channels (the shared models: 4 heads, hidden 256): codes + FP32 {scale, min} per group.
        assertEquals(2048, KvPrecision.FP32.bytesPerTokenPerLayer(4, 64));
        assertEquals(2 * 4 * (64 + 8), KvPrecision.INT8.bytesPerTokenPerLayer(4, 64));
        assertEquals(2 * 4 * (32 + 8), KvPrecision.INT4.bytesPerTokenPerLayer(4, 64));
        assertEquals(2 * 4 * (24 + 8), KvPrecision.INT3.bytesPerTokenPerLayer(4, 64));
        assertEquals(2 * 3 * (13 + 8), KvPrecision.INT3.bytesPerTokenPerLayer(3, 33)); // 99 bits → 13 bytes per group

        int layers = 3;
        for (KvPrecision precision : KvPrecision.values()) {
            try (KvCache cache = new KvCache(layers, 4, 64, 2048, precision)) {
                assertEquals(0, cache.bytes());
                cache.reserve(65); // capacity 128
                assertEquals(layers * 128 * precision.bytesPerTokenPerLayer(4, 64), cache.bytes(), precision.toString());
            }
        }
        try (KvCache legacy = new KvCache(layers, 256, 2048)) { // the FP32 constructor: bytes as before
            legacy.reserve(1);
            assertEquals(2L * layers * 64 * 256 * Float.BYTES, legacy.bytes());
        }
    }

    @Test
    void shouldOfferFp32SegmentsOnlyForAnFp32Cache() {
        try (KvCache fp32 = new KvCache(1, 4, 16, 100, KvPrecision.FP32);
             KvCache int4 = new KvCache(1, 4, 16, 100, KvPrecision.INT4)) {
            fp32.reserve(1);
            int4.reserve(1);
            assertEquals(64L * 64 * Float.BYTES, fp32.keys(0).byteSize());
            assertEquals(64L * 64 * Float.BYTES, fp32.values(0).byteSize());
            assertThrows(IllegalStateException.class, () -> int4.keys(0));
            assertThrows(IllegalStateException.class, () -> int4.values(0));
        }
    }

    @Test
    void shouldParsePrecisionNamesAndBitWidths() {
        assertSame(KvPrecision.FP32, KvPrecision.parse("fp32"));
        assertSame(KvPrecision.FP32, KvPrecision.parse("16"));
        assertSame(KvPrecision.INT8, KvPrecision.parse("8"));
        assertSame(KvPrecision.INT4, KvPrecision.parse(" INT4 "));
        assertSame(KvPrecision.INT3, KvPrecision.parse("3"));
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> KvPrecision.parse("int2"));
        assertTrue(bad.getMessage().contains("int2"), bad.getMessage());
    }
}
