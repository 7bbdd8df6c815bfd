package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The integer decomposition of {@link LowBitLinear} equals the FP32 product of its dequantized operands,
 * packed weights really shrink, and every stored layer comes back bit for bit.
 */
@Timeout(30)
class LowBitLinearTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /**
     * out = Σ_seg s·s_w·(acc − z·rowsum) + bias must equal Σ_k x̃[i,k]·w̃[j,k] + bias, with x̃ and w̃ the
     * dequantized codes, up to float rounding of the scale products.
     */
    @ParameterizedTest(name = "W{0}A{1} group {2} {3} rows={4} in={5} out={6} asymmetric weights {7}")
    @CsvSource({
            "4, 8, 0, PER_CLUSTER_STATIC, 7, 70, 33, false", "4, 4, 0, PER_CLUSTER_STATIC, 1, 64, 48, false",
            "4, 3, 16, PER_CLUSTER_STATIC, 37, 99, 21, false", "4, 4, 32, PER_TENSOR_STATIC, 12, 96, 40, false",
            "4, 8, 0, PER_TOKEN_DYNAMIC, 15, 131, 17, false", "8, 8, 0, PER_CLUSTER_STATIC, 11, 64, 64, false",
            "3, 4, 0, PER_TOKEN_DYNAMIC, 3, 45, 9, false",
            "4, 8, 0, PER_CLUSTER_STATIC, 7, 70, 33, true", "4, 3, 16, PER_CLUSTER_STATIC, 37, 99, 21, true",
            "4, 4, 32, PER_TENSOR_STATIC, 12, 96, 40, true", "3, 4, 0, PER_TOKEN_DYNAMIC, 3, 45, 9, true"})
    void shouldEqualTheFp32ProductOfItsDequantizedOperands(int weightBits, int activationBits, int group,
                                                             ActivationRanges ranges, int rows, int in, int out,
                                                             boolean asymmetric) {
        SplittableRandom random = new SplittableRandom(rows * 31L + in);
        try (Arena arena = Arena.ofShared()) {
            Linear fp32 = new Linear(gaussian(arena, random, out * in, 0.2), gaussian(arena, random, out, 1), out, in);
            MemorySegment x = gaussian(arena, random, rows * in, 1.0);
            for (int i = 0; i < rows; i++) {
                x.setAtIndex(F32, (long) i * in + 3, 40f + i); // a shifted outlier channel
            }
            int[] gather = shuffled(random, in);
            int[] ends = ranges == ActivationRanges.PER_CLUSTER_STATIC ? new int[] {5, in / 2, in - 1, in} : new int[] {in};
            float[] min = new float[ends.length];
            float[] max = new float[ends.length];
            for (int c = 0; c < ends.length; c++) {
                min[c] = -2.5f - c;
                max[c] = 2f + 20 * c;
            }
            if (asymmetric) {
                for (int k = 0; k < in; k += 2) {
                    fp32.weight().setAtIndex(F32, k, fp32.weight().getAtIndex(F32, k) + 1f); // skew row 0: zero point ≠ 8
                }
            }
            LowBitLinear q = LowBitLinear.quantize(fp32, new LowBitScheme(weightBits, group, activationBits, ranges,
                    asymmetric), ends, min, max, gather, arena);
            assertEquals(asymmetric, q.weights().asymmetric());
            float[] xq = q.fakeQuantizedInput(x, rows);
            MemorySegment w = arena.allocate(4L * out * in);
            q.weights().dequantize(w);
            MemorySegment actual = arena.allocate(4L * rows * out);
            q.apply(x, rows, actual);
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < out; j++) {
                    double expected = fp32.bias().getAtIndex(F32, j);
                    double magnitude = Math.abs(expected);
                    for (int k = 0; k < in; k++) {
                        double term = (double) xq[i * in + k] * w.getAtIndex(F32, (long) j * in + k);
                        expected += term;
                        magnitude += Math.abs(term);
                    }
                    assertEquals(expected, actual.getAtIndex(F32, (long) i * out + j), 1e-5 * magnitude + 1e-6,
                            "row " + i + " col " + j);
                }
            }
        }
    }

    @Test
    void shouldRoundTripOddSizesThroughPackedWeights() {
        SplittableRandom random = new SplittableRandom(5);
        try (Arena arena = Arena.ofShared()) {
            for (int bits : new int[] {3, 4, 8}) {
                for (int in : new int[] {1, 7, 9, 13, 33, 127}) {
                    int out = 5;
                    int qmax = PackedWeights.qmax(bits);
                    // Integer weights with ±qmax in every row: scale 1, so dequantized == original exactly.
                    MemorySegment weight = arena.allocate(4L * out * in);
                    for (int j = 0; j < out; j++) {
                        for (int k = 0; k < in; k++) {
                            weight.setAtIndex(F32, (long) j * in + k, random.nextInt(-qmax, qmax + 1));
                        }
                        weight.setAtIndex(F32, (long) j * in + random.nextInt(in), j % 2 == 0 ? qmax : -qmax);
                    }
                    PackedWeights packed = PackedWeights.quantize(weight, out, in, bits, 0, arena);
                    assertEquals(out * PackedWeights.rowBytes(bits, in) + 4L * out, packed.bytes());
                    assertEquals((in * bits + 7) / 8, PackedWeights.rowBytes(bits, in));
                    MemorySegment back = arena.allocate(4L * out * in);
                    packed.dequantize(back);
                    for (long e = 0; e < (long) out * in; e++) {
                        assertEquals(weight.getAtIndex(F32, e), back.getAtIndex(F32, e), 0f, bits + " bits, in " + in);
                    }
                }
            }
        }
    }

    @Test
    void shouldStoreFourBitWeightsInAboutAnEighthOfFp32() {
        SplittableRandom random = new SplittableRandom(6);
        try (Arena arena = Arena.ofShared()) {
            Linear fp32 = new Linear(gaussian(arena, random, 256 * 1024, 1), null, 256, 1024);
            long fp32Bytes = 4L * 256 * 1024;
            long perChannel = WeightOnlyLinear.quantize(fp32, 4, 0, arena).weights().bytes();
            long grouped = WeightOnlyLinear.quantize(fp32, 4, 128, arena).weights().bytes();
            assertEquals(256 * 512 + 4 * 256, perChannel);
            assertEquals(256 * 512 + 4 * 256 * 8, grouped);
            assertTrue(perChannel * 7.9 < fp32Bytes, perChannel + " of " + fp32Bytes);
        }
    }

    @Test
    void shouldRestoreEveryLowBitLayerToIdenticalOutputs() {
        SplittableRandom random = new SplittableRandom(7);
        int rows = 13, in = 77, out = 29;
        try (Arena arena = Arena.ofShared()) {
            Linear fp32 = new Linear(gaussian(arena, random, out * in, 0.3), gaussian(arena, random, out, 1), out, in);
            Linear noBias = new Linear(fp32.weight(), null, out, in);
            MemorySegment x = gaussian(arena, random, rows * in, 1.0);
            StoredLinear[] layers = {
                    WeightOnlyLinear.quantize(fp32, 4, 0, arena),
                    WeightOnlyLinear.quantize(noBias, 4, 32, arena),
                    LowBitLinear.quantize(fp32, new LowBitScheme(4, 0, 4, ActivationRanges.PER_CLUSTER_STATIC),
                            new int[] {10, 40, in}, new float[] {-1, -2, 0.5f}, new float[] {1, 3, 2.5f},
                            shuffled(random, in), arena),
                    LowBitLinear.quantize(noBias, new LowBitScheme(4, 32, 3, ActivationRanges.PER_CLUSTER_STATIC),
                            new int[] {30, in}, new float[] {-1, -2}, new float[] {1, 3}, null, arena),
                    LowBitLinear.quantize(fp32, new LowBitScheme(4, 0, 8, ActivationRanges.PER_TENSOR_STATIC),
                            new int[] {in}, new float[] {-3}, new float[] {3}, null, arena),
                    LowBitLinear.quantize(fp32, new LowBitScheme(8, 16, 8, ActivationRanges.PER_TOKEN_DYNAMIC),
                            new int[] {in}, new float[1], new float[1], null, arena),
                    LowBitLinear.quantize(fp32, new LowBitScheme(4, 0, 4, ActivationRanges.PER_CLUSTER_STATIC, true),
                            new int[] {10, 40, in}, new float[] {-1, -2, 0.5f}, new float[] {1, 3, 2.5f},
                            shuffled(random, in), arena),
                    LowBitLinear.quantize(noBias, new LowBitScheme(3, 32, 4, ActivationRanges.PER_TENSOR_STATIC, true),
                            new int[] {in}, new float[] {-3}, new float[] {3}, null, arena),
                    WeightOnlyLinear.of(PackedWeights.quantize(fp32, 4, 16, true, arena), fp32.bias())};
            for (StoredLinear layer : layers) {
                Map<String, MemorySegment> tensors = new HashMap<>();
                for (StoredLinear.Tensor t : layer.tensors()) {
                    long elements = 1;
                    for (long d : t.shape()) {
                        elements *= d;
                    }
                    assertEquals(elements * t.dtype().byteSize(), t.data().byteSize(), layer.kind() + " " + t.name());
                    tensors.put(t.name(), copyOf(t.data()));
                }
                LinearLayer restored = StoredLinears.restore(layer.kind(), layer.settings(), tensors, arena);
                MemorySegment expected = arena.allocate(4L * rows * out);
                MemorySegment actual = arena.allocate(4L * rows * out);
                layer.apply(x, rows, expected);
                restored.apply(x, rows, actual);
                assertEquals(-1, expected.mismatch(actual), layer.kind() + " " + layer.settings());
                assertEquals(layer.settings(), ((StoredLinear) restored).settings());
            }
        }
    }

    private static MemorySegment copyOf(MemorySegment data) {
        MemorySegment copy = Arena.ofAuto().allocate(data.byteSize(), 8);
        copy.copyFrom(data);
        return copy;
    }

    static int[] shuffled(SplittableRandom random, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    static MemorySegment gaussian(Arena arena, SplittableRandom random, int count, double sigma) {
        MemorySegment m = arena.allocate(4L * count, 64);
        for (int i = 0; i < count; i++) {
            m.setAtIndex(F32, i, (float) (random.nextGaussian() * sigma));
        }
        return m;
    }
}
