package io.bitrelay.runtime.ops.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

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
