package io.bitrelay.runtime.wire;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import static io.bitrelay.runtime.wire.WireTestData.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class Fp16CodecTest {
    private final Fp16Codec codec = new Fp16Codec();

    @Test
    void shouldSizeTwoBytesPerElementAndNoParams() {
        assertEquals(0, codec.paramsBytes(17, 768));
        assertEquals(17L * 768 * 2, codec.payloadBytes(17, 768));
        assertEquals((long) Integer.MAX_VALUE * Integer.MAX_VALUE * 2, codec.payloadBytes(Integer.MAX_VALUE, Integer.MAX_VALUE));
    }

    @Test
    void shouldRoundTripFp16RepresentableValuesExactlyOverOddShapes() {
        Random random = new Random(1);
        for (int rows : ROWS) {
            for (int width : WIDTHS) {
                float[] values = new float[rows * width];
                for (int i = 0; i < values.length; i++) {
                    float f;
                    do {
                        f = Float.float16ToFloat((short) random.nextInt(1 << 16));
                    } while (Float.isNaN(f));
                    values[i] = f;
                }
                assertArrayEquals(values, roundTrip(values, rows, width), rows + " × " + width);
            }
        }
    }

    @Test
    void shouldCarryExtremesSubnormalsZerosAndInfinities() {
        float tinySubnormal = Float.float16ToFloat((short) 1); // 2^-24
        float[] values = {65504f, -65504f, tinySubnormal, -tinySubnormal, 0f, -0f,
                Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 1f, -2.5f};
        float[] decoded = roundTrip(values, 2, 5);
        assertArrayEquals(values, decoded);
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(decoded[5]), "sign of -0 survives");
    }

    @Test
    void shouldRoundOtherValuesToNearestFp16() {
        float[] values = hiddenStates(3, 1003, 2);
        float[] decoded = roundTrip(values, 3, 1003);
        for (int i = 0; i < values.length; i++) {
            assertEquals(Float.float16ToFloat(Float.floatToFloat16(values[i])), decoded[i]);
        }
        float[] beyond = {70000f, Float.NaN};
        float[] out = roundTrip(beyond, 1, 2);
        assertEquals(Float.POSITIVE_INFINITY, out[0]);
        assertTrue(Float.isNaN(out[1]));
    }

    private float[] roundTrip(float[] values, int rows, int width) {
        MemorySegment payload = zeros(codec.payloadBytes(rows, width));
        MemorySegment params = zeros(0).asSlice(0, 0);
        codec.encode(segment(values), rows, width, params, payload);
        MemorySegment out = zeros((long) values.length * Float.BYTES);
        codec.decode(params, payload, rows, width, out);
        return floats(out, values.length);
    }
}
