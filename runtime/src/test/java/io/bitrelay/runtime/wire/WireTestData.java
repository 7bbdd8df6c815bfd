package io.bitrelay.runtime.wire;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/** Activations for wire tests: off-heap FP32 segments, as the stages hand them to a link. */
final class WireTestData {
    static final int[] ROWS = {1, 3, 17};
    /** The brief's widths plus two that mix the vector body with a scalar tail (8 lanes on AVX2). */
    static final int[] WIDTHS = {1, 7, 13, 768, 1000, 1003};

    private WireTestData() {
    }

    static MemorySegment segment(float[] values) {
        MemorySegment segment = Arena.ofAuto().allocate((long) values.length * Float.BYTES, 64);
        MemorySegment.copy(values, 0, segment, ValueLayout.JAVA_FLOAT, 0, values.length);
        return segment;
    }

    static float[] floats(MemorySegment segment, int count) {
        float[] values = new float[count];
        MemorySegment.copy(segment, ValueLayout.JAVA_FLOAT, 0, values, 0, count);
        return values;
    }

    static MemorySegment zeros(long bytes) {
        return Arena.ofAuto().allocate(Math.max(1, bytes), 64);
    }

    /**
     * Hidden-state-like rows: Gaussian with a per-row magnitude spanning 1e-3..1e2 and a few outlier
     * channels 20× larger, as OPT's residual stream has.
     */
    static float[] hiddenStates(int rows, int width, long seed) {
        Random random = new Random(seed);
        float[] values = new float[rows * width];
        for (int r = 0; r < rows; r++) {
            double magnitude = Math.pow(10, random.nextInt(6) - 3);
            for (int c = 0; c < width; c++) {
                double outlier = c % 97 == 5 ? 20 : 1;
                values[r * width + c] = (float) (random.nextGaussian() * magnitude * outlier);
            }
        }
        return values;
    }
}
