package io.bitrelay.runtime.ops.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class VectorMathTest {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

    /**
     * Scalar float code rounds the same in every JIT tier, so matching it bit for bit both before and after
     * the sum is hot enough for C2 pins the lane sum to one order (reduceLanes did not: 676 of 1000 sums of
     * 16 lanes changed once compiled).
     */
    @Test
    void shouldSumLanesInOneOrderBeforeAndAfterCompilation() {
        float[][] vectors = wideRangeVectors(1000);
        assertMatchesButterfly(vectors);
        float sink = 0;
        for (int i = 0; i < 200_000; i++) {
            sink += VectorMath.sumLanes(FloatVector.fromArray(SPECIES, vectors[i % vectors.length], 0));
        }
        assertEquals(sink, sink, "keeps the warm-up loop alive");
        assertMatchesButterfly(vectors);
    }

    @Test
    void shouldRefuseOtherSpecies() {
        FloatVector narrow = FloatVector.zero(FloatVector.SPECIES_64);
        if (narrow.species() != SPECIES) {
            assertThrows(IllegalArgumentException.class, () -> VectorMath.sumLanes(narrow));
        }
    }

    /** LayerNorm and scaling read and write any segment kind, each element as the scalar expression rounds it. */
    @Test
    void shouldLayerNormAndScaleHeapAndNativeRowsAsTheScalarFormulas() {
        int rows = 3, n = 37; // not a multiple of any lane count
        Random random = new Random(5);
        float[] x = new float[rows * n], gain = new float[n], bias = new float[n];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian() * (i % 11 == 0 ? 60 : 1) + 3;
        for (int i = 0; i < n; i++) {
            gain[i] = 1 + (float) random.nextGaussian() * 0.1f;
            bias[i] = (float) random.nextGaussian() * 0.1f;
        }
        float[] expected = new float[x.length];
        for (int r = 0; r < rows; r++) {
            double sum = 0, squares = 0;
            for (int i = 0; i < n; i++) sum += x[r * n + i];
            float mean = (float) (sum / n);
            for (int i = 0; i < n; i++) squares += (x[r * n + i] - mean) * (x[r * n + i] - mean);
            float inverseStd = (float) (1.0 / Math.sqrt(squares / n + 1e-5f));
            for (int i = 0; i < n; i++) expected[r * n + i] = (x[r * n + i] - mean) * inverseStd * gain[i] + bias[i];
        }
        try (Arena arena = Arena.ofShared()) { // the rows go to the CPU pool's threads
            for (boolean heap : new boolean[]{true, false}) {
                MemorySegment in = heap ? MemorySegment.ofArray(x.clone()) : arena.allocateFrom(ValueLayout.JAVA_FLOAT, x);
                MemorySegment out = heap ? MemorySegment.ofArray(new float[x.length]) : arena.allocate(4L * x.length);
                VectorMath.layerNorm(in, out, rows, n, MemorySegment.ofArray(gain), arena.allocateFrom(ValueLayout.JAVA_FLOAT, bias), 1e-5f);
                float[] actual = out.toArray(ValueLayout.JAVA_FLOAT);
                for (int i = 0; i < x.length; i++) {
                    assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(actual[i]), "layerNorm element " + i + (heap ? " (heap)" : " (native)"));
                }
                VectorMath.scaleInPlace(in, x.length, 0.125f);
                float[] scaled = in.toArray(ValueLayout.JAVA_FLOAT);
                for (int i = 0; i < x.length; i++) {
                    assertEquals(Float.floatToRawIntBits(x[i] * 0.125f), Float.floatToRawIntBits(scaled[i]), "scaled element " + i);
                }
            }
        }
    }

    private static void assertMatchesButterfly(float[][] vectors) {
        for (float[] lanes : vectors) {
            float expected = butterfly(lanes.clone());
            float actual = VectorMath.sumLanes(FloatVector.fromArray(SPECIES, lanes, 0));
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual),
                    () -> "lane sum " + actual + " vs butterfly " + expected);
        }
    }

    private static float butterfly(float[] lanes) {
        for (int stride = lanes.length / 2; stride > 0; stride /= 2) {
            float[] folded = new float[lanes.length];
            for (int i = 0; i < lanes.length; i++) {
                folded[i] = lanes[i] + lanes[i ^ stride];
            }
            lanes = folded;
        }
        return lanes[0];
    }

    private static float[][] wideRangeVectors(int count) {
        Random random = new Random(11);
        float[][] vectors = new float[count][SPECIES.length()];
        for (float[] lanes : vectors) {
            for (int i = 0; i < lanes.length; i++) {
                lanes[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(6)));
            }
        }
        return vectors;
    }
}
