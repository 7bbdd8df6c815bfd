package io.bitrelay.runtime.quant;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Weights on grids with a zero point ({@link WeightGrid}, {@link PackedWeights}): all 2^bits levels used. */
@Timeout(30)
class AsymmetricWeightsTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /**
     * Rows whose values are s·(u − z) for u in [0, 2^bits − 1] with both ends and 0 present: asymmetric rounding
     * must give them back exactly; a symmetric grid cannot (only 2^bits − 1 levels, centred on 0).
     */
    @Test
    void shouldReconstructWeightsThatLieOnAnAsymmetricGridExactly() {
        SplittableRandom random = new SplittableRandom(11);
        for (int bits : new int[] {3, 4}) {
            int levels = (1 << bits) - 1;
            int out = 9, in = 50;
            try (Arena arena = Arena.ofShared()) {
                MemorySegment weight = arena.allocate(4L * out * in);
                for (int j = 0; j < out; j++) {
                    float scale = 0.25f * (j + 1);      // a power-of-two multiple: s·(u − z) exact in float
                    int zero = 1 + j % (levels - 1);    // 0 lies inside [−z·s, (levels − z)·s]
                    for (int k = 0; k < in; k++) {
                        int u = k == 0 ? 0 : k == 1 ? levels : k == 2 ? zero : random.nextInt(levels + 1);
                        weight.setAtIndex(F32, (long) j * in + k, scale * (u - zero));
                    }
                }
                PackedWeights asym = PackedWeights.quantize(weight, out, in, bits, 0, true, arena);
                assertEquals(0, squaredError(weight, asym, out, in, arena), bits + "-bit asymmetric");
                assertTrue(squaredError(weight, PackedWeights.quantize(weight, out, in, bits, 0, false, arena), out, in, arena) > 0,
                        bits + "-bit symmetric cannot hold them");
                for (int j = 0; j < out; j++) {
                    assertEquals(1 + j % (levels - 1), asym.zero(j, 0), "row " + j + " zero point");
                }
            }
        }
    }

    /** Rows leaning to one side waste half a symmetric grid; asymmetric rounding error must be well below it. */
    @Test
    void shouldRoundSkewedRowsWithLessErrorThanSymmetric() {
        SplittableRandom random = new SplittableRandom(12);
        int out = 64, in = 256;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment weight = arena.allocate(4L * out * in);
            for (long e = 0; e < (long) out * in; e++) {
                weight.setAtIndex(F32, e, (float) random.nextDouble(-0.1, 1.0));
            }
            for (int group : new int[] {0, 64}) {
                double sym = squaredError(weight, PackedWeights.quantize(weight, out, in, 4, group, false, arena), out, in, arena);
                double asym = squaredError(weight, PackedWeights.quantize(weight, out, in, 4, group, true, arena), out, in, arena);
                assertTrue(asym < 0.4 * sym, "group " + group + ": asymmetric " + asym + " vs symmetric " + sym);
            }
        }
    }

    @Test
    void shouldCostOneByteOfZeroPointPerGroupAndKeepZeroExact() {
        try (Arena arena = Arena.ofShared()) {
            int out = 4, in = 256;
            MemorySegment weight = arena.allocate(4L * out * in);
            for (long e = 0; e < (long) out * in; e++) {
                weight.setAtIndex(F32, e, e % 3 == 0 ? 0f : (float) Math.sin(e));
            }
            PackedWeights sym = PackedWeights.quantize(weight, out, in, 4, 128, false, arena);
            PackedWeights asym = PackedWeights.quantize(weight, out, in, 4, 128, true, arena);
            assertEquals(sym.bytes() + out * 2, asym.bytes());
            MemorySegment back = arena.allocate(4L * out * in);
            asym.dequantize(back);
            for (long e = 0; e < (long) out * in; e += 3) {
                assertEquals(0f, back.getAtIndex(F32, e), "a zero weight stays zero");
            }
        }
    }

    @Test
    void shouldRefuseAsymmetricEightBitWeightsNamingWhy() {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment weight = arena.allocate(4L * 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> PackedWeights.quantize(weight, 2, 2, 8, 0, true, arena));
            assertTrue(e.getMessage().contains("asymmetric weights have 3 or 4 bits"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> new LowBitScheme(8, 0, 8, ActivationRanges.PER_CLUSTER_STATIC, true));
        assertEquals(QuantRecipe.W8A8_RPTQ, QuantRecipe.W8A8_RPTQ.withAsymmetricWeights(true), "8-bit weights stay symmetric");
        assertTrue(QuantRecipe.W4A4_RPTQ.withAsymmetricWeights(true).lowBit().asymmetricWeights());
    }

    private static double squaredError(MemorySegment weight, PackedWeights packed, int out, int in, Arena arena) {
        MemorySegment back = arena.allocate(4L * out * in);
        packed.dequantize(back);
        double total = 0;
        for (long e = 0; e < (long) out * in; e++) {
            double d = back.getAtIndex(F32, e) - weight.getAtIndex(F32, e);
            total += d * d;
        }
        return total;
    }
}
