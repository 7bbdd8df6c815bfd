package io.bitrelay.runtime.wire;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

import static io.bitrelay.runtime.wire.WireTestData.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class Int8TokenCodecTest {
    private static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private final Int8TokenCodec codec = new Int8TokenCodec();

    @Test
    void shouldSizeOneFp16ScalePerRowAndOneBytePerElement() {
        assertEquals(34, codec.paramsBytes(17, 768));
        assertEquals(17L * 768, codec.payloadBytes(17, 768));
        assertThrows(ArithmeticException.class, () -> codec.paramsBytes(Integer.MAX_VALUE, 1));
    }

    @Test
    void shouldStayWithinHalfAScalePerElementOverOddShapes() {
        for (int rows : ROWS) {
            for (int width : WIDTHS) {
                float[] values = hiddenStates(rows, width, 31L * rows + width);
                Encoded encoded = encode(values, rows, width);
                float[] decoded = decode(encoded, rows, width);
                for (int r = 0; r < rows; r++) {
                    float scale = encoded.scale(r);
                    for (int c = 0; c < width; c++) {
                        int i = r * width + c;
                        // scale / 2 from rounding to an integer step; the rest is FP32 rounding of x / scale and q × scale
                        double bound = scale * 0.5 * (1 + 1e-4) + Math.ulp(values[i]);
                        assertTrue(Math.abs(values[i] - decoded[i]) <= bound, () -> rows + " × " + width + " at "
                                + i + ": " + values[i] + " decoded as " + decoded[i] + ", scale " + scale);
                    }
                }
            }
        }
    }

    @Test
    void shouldPickTheSmallestFp16ScaleThatClipsNothing() {
        for (int rows : ROWS) {
            for (int width : WIDTHS) {
                float[] values = hiddenStates(rows, width, 7L * rows + width);
                Encoded encoded = encode(values, rows, width);
                for (int r = 0; r < rows; r++) {
                    float absMax = 0;
                    for (int c = 0; c < width; c++) {
                        absMax = Math.max(absMax, Math.abs(values[r * width + c]));
                    }
                    float wanted = absMax / 127f;
                    short bits = encoded.params.getAtIndex(F16_LE, r);
                    assertTrue(Float.float16ToFloat(bits) >= wanted, "scale covers absmax / 127");
                    assertTrue(Float.float16ToFloat((short) (bits - 1)) < wanted, "no smaller FP16 would do");
                }
            }
        }
    }

    @Test
    void shouldMatchAScalarReferenceByteForByte() {
        for (int rows : ROWS) {
            for (int width : WIDTHS) {
                float[] values = hiddenStates(rows, width, 11L * rows + width);
                Encoded encoded = encode(values, rows, width);
                for (int r = 0; r < rows; r++) {
                    float scale = encoded.scale(r);
                    for (int c = 0; c < width; c++) {
                        int i = r * width + c;
                        byte expected = (byte) Math.rint(Math.max(-127f, Math.min(127f, values[i] / scale)));
                        assertEquals(expected, encoded.payload.get(ValueLayout.JAVA_BYTE, i),
                                rows + " × " + width + " at " + i);
                    }
                }
                float[] decoded = decode(encoded, rows, width);
                for (int i = 0; i < values.length; i++) {
                    float expected = encoded.payload.get(ValueLayout.JAVA_BYTE, i) * encoded.scale(i / width);
                    assertEquals(expected, decoded[i], "decode is q × scale at " + i);
                }
            }
        }
    }

    @Test
    void shouldEncodeZeroRowsAsZeroScaleAndDecodeThemToZeros() {
        int width = 1003;
        float[] values = hiddenStates(3, width, 5);
        Arrays.fill(values, width, 2 * width, 0f);
        values[width + 10] = -0f;
        Encoded encoded = encode(values, 3, width);
        assertEquals(0f, encoded.scale(1));
        float[] decoded = decode(encoded, 3, width);
        for (int c = 0; c < width; c++) {
            assertEquals(0f, decoded[width + c]);
            assertEquals(0, encoded.payload.get(ValueLayout.JAVA_BYTE, width + c));
        }
    }

    @Test
    void shouldCarryExtremeAndTinyValues() {
        float[] values = new float[3 * 13];
        values[0] = 65504f;
        values[1] = -65504f;
        values[2] = 1f;
        for (int c = 0; c < 13; c++) {
            values[13 + c] = (c % 2 == 0 ? 1 : -1) * 1e-30f * (c + 1); // far below FP16's smallest subnormal
            values[26 + c] = Float.MIN_VALUE * c;
        }
        Encoded encoded = encode(values, 3, 13);
        float[] decoded = decode(encoded, 3, 13);
        assertEquals(65504f, decoded[0], encoded.scale(0) / 2);
        assertEquals(-65504f, decoded[1], encoded.scale(0) / 2);
        assertEquals(127, encoded.payload.get(ValueLayout.JAVA_BYTE, 0));
        for (int i = 13; i < values.length; i++) {
            assertTrue(encoded.scale(i / 13) > 0, "a nonzero row never gets scale 0");
            assertEquals(values[i], decoded[i], encoded.scale(i / 13) / 2);
        }
    }

    @Test
    void shouldSaturateRowsBeyondTheLargestFp16Scale() {
        float[] values = {1e7f, -2e7f, 5f};
        Encoded encoded = encode(values, 1, 3);
        assertEquals(65504f, encoded.scale(0));
        float[] decoded = decode(encoded, 1, 3);
        assertEquals(127 * 65504f, decoded[0]);
        assertEquals(-127 * 65504f, decoded[1]);
    }

    @Test
    void shouldRefuseNonFiniteActivations() {
        for (int at : new int[] {5, 770, 1002}) {
            float[] values = hiddenStates(2, 1003, at);
            values[at] = Float.NaN;
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> encode(values, 2, 1003));
            assertTrue(e.getMessage().contains("row 0"), e.getMessage());
            values[at] = Float.NEGATIVE_INFINITY;
            assertThrows(IllegalArgumentException.class, () -> encode(values, 2, 1003));
        }
    }

    private record Encoded(MemorySegment params, MemorySegment payload) {
        float scale(int row) {
            return Float.float16ToFloat(params.getAtIndex(F16_LE, row));
        }
    }

    private Encoded encode(float[] values, int rows, int width) {
        MemorySegment params = zeros(codec.paramsBytes(rows, width)).asSlice(0, codec.paramsBytes(rows, width));
        MemorySegment payload = zeros(codec.payloadBytes(rows, width)).asSlice(0, codec.payloadBytes(rows, width));
        codec.encode(segment(values), rows, width, params, payload);
        return new Encoded(params, payload);
    }

    private float[] decode(Encoded encoded, int rows, int width) {
        MemorySegment out = zeros((long) rows * width * Float.BYTES);
        codec.decode(encoded.params, encoded.payload, rows, width, out);
        return floats(out, rows * width);
    }
}
