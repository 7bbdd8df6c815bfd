package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.ops.cpu.CpuParallelism;
import io.bitrelay.runtime.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;

/**
 * Round-to-nearest weights, symmetric, one scale per output channel or per (output channel, group of
 * {@code groupSize} input columns), stored packed: {@code w[j,k] ≈ scale[j, k / groupSize] · q[j,k]} with
 * {@code q = clamp(rint(w / scale), −qmax, qmax)}, {@code qmax = 2^(bits−1) − 1}, {@code scale = absmax / qmax}
 * over the channel or group (an all-zero one gets scale 1). Codes are stored offset by {@code 2^(bits−1)}
 * (so unsigned, 4 bits: [1, 15]) through {@link BitPacking} (8 bits: one byte each); each row starts on a
 * byte boundary ({@link #rowBytes}), so any row can be unpacked on its own. Symmetric codes keep the
 * integer GEMM free of a weight zero point: {@code −128} never occurs, as {@code Int8MatMul} requires.
 */
public final class PackedWeights {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final int ROWS_PER_TASK = 32;

    private final MemorySegment codes; // (outFeatures, rowBytes) packed unsigned codes
    private final float[] scales;      // (outFeatures, groups)
    private final int bits;
    private final int groupSize;       // input columns per scale; == inFeatures for per-output-channel
    private final int outFeatures;
    private final int inFeatures;
    private final long rowBytes;

    private PackedWeights(MemorySegment codes, float[] scales, int bits, int groupSize, int outFeatures, int inFeatures) {
        this.codes = codes;
        this.scales = scales;
        this.bits = bits;
        this.groupSize = groupSize;
        this.outFeatures = outFeatures;
        this.inFeatures = inFeatures;
        this.rowBytes = rowBytes(bits, inFeatures);
    }

    /**
     * @param groupSize input columns per scale; 0 = one scale per output channel
     */
    public static PackedWeights quantize(Linear fp32, int bits, int groupSize, Arena arena) {
        return quantize(fp32.weight(), fp32.outFeatures(), fp32.inFeatures(), bits, groupSize, arena);
    }

    /** Quantizes {@code weight} (out, in) FP32, row-major, into {@code arena}. */
    public static PackedWeights quantize(MemorySegment weight, int out, int in, int bits, int groupSize, Arena arena) {
        checkBits(bits);
        int group = groupSize == 0 || groupSize >= in ? in : groupSize;
        int groups = Math.ceilDiv(in, group);
        int qmax = qmax(bits);
        return build(out, in, bits, groupSize, (j, row, rowScales) -> {
            long base = (long) j * in;
            for (int g = 0; g < groups; g++) {
                int from = g * group;
                int to = Math.min(in, from + group);
                float absMax = 0f;
                for (int k = from; k < to; k++) {
                    absMax = Math.max(absMax, Math.abs(weight.getAtIndex(F32, base + k)));
                }
                float scale = absMax > 0f ? absMax / qmax : 1f;
                rowScales[g] = scale;
                for (int k = from; k < to; k++) {
                    float q = (float) Math.rint(weight.getAtIndex(F32, base + k) / scale);
                    row[k] = (byte) Math.clamp(q, -qmax, qmax);
                }
            }
        }, arena);
    }

    /** Fills one output channel's signed codes (each in [−qmax, qmax]) and its scales, one per group. */
    @FunctionalInterface
    interface RowQuantizer {
        void quantize(int row, byte[] codes, float[] scales);
    }

    /**
     * Weights whose codes and scales {@code quantizer} chooses row by row (rows in parallel, so it must not
     * share mutable state between rows): round-to-nearest here, error-compensating in {@link Gptq}.
     *
     * @param groupSize input columns per scale; 0 = one scale per output channel
     */
    static PackedWeights build(int out, int in, int bits, int groupSize, RowQuantizer quantizer, Arena arena) {
        checkBits(bits);
        int group = groupSize == 0 || groupSize >= in ? in : groupSize;
        int groups = Math.ceilDiv(in, group);
        long rowBytes = rowBytes(bits, in);
        MemorySegment codes = arena.allocate(out * rowBytes, 64);
        float[] scales = new float[out * groups];
        int qmax = qmax(bits);
        int offset = offset(bits);
        CpuParallelism.forEach(Math.ceilDiv(out, ROWS_PER_TASK), t -> {
            byte[] row = new byte[in];
            float[] rowScales = new float[groups];
            for (int j = t * ROWS_PER_TASK, end = Math.min(out, j + ROWS_PER_TASK); j < end; j++) {
                quantizer.quantize(j, row, rowScales);
                for (int k = 0; k < in; k++) {
                    if (row[k] < -qmax || row[k] > qmax) {
                        throw new IllegalStateException("row " + j + " column " + k + ": code " + row[k]
                                + " outside [" + -qmax + ", " + qmax + "]");
                    }
                    row[k] = (byte) (row[k] + offset);
                }
                System.arraycopy(rowScales, 0, scales, j * groups, groups);
                store(bits, row, codes, j * rowBytes);
            }
        });
        return new PackedWeights(codes, scales, bits, group, out, in);
    }

    /** Rebuilds weights saved through {@link #tensors(List)} and {@link #settings(Map)}; copied into {@code arena}. */
    static PackedWeights restore(Map<String, String> settings, Map<String, MemorySegment> tensors, Arena arena) {
        int out = StoredLinears.intSetting(settings, "out_features");
        int in = StoredLinears.intSetting(settings, "in_features");
        int bits = StoredLinears.intSetting(settings, "weight_bits");
        int group = StoredLinears.intSetting(settings, "group_size");
        checkBits(bits);
        if (group < 1 || group > in) {
            throw new IllegalArgumentException("stored group_size " + group + " is not in [1, " + in + "]");
        }
        int groups = Math.ceilDiv(in, group);
        MemorySegment codes = StoredLinears.copy(tensors, "codes", out * rowBytes(bits, in), arena);
        float[] scales = StoredLinears.copy(tensors, "scales", (long) out * groups * Float.BYTES, arena)
                .toArray(ValueLayout.JAVA_FLOAT);
        return new PackedWeights(codes, scales, bits, group, out, in);
    }

    void tensors(List<StoredLinear.Tensor> list) {
        list.add(new StoredLinear.Tensor("codes", DType.U8, new long[]{outFeatures, rowBytes}, codes));
        list.add(new StoredLinear.Tensor("scales", DType.F32, new long[]{outFeatures, groups()},
                MemorySegment.ofArray(scales)));
    }

    void settings(Map<String, String> settings) {
        settings.put("out_features", Integer.toString(outFeatures));
        settings.put("in_features", Integer.toString(inFeatures));
        settings.put("weight_bits", Integer.toString(bits));
        settings.put("group_size", Integer.toString(groupSize));
    }

    /** Bytes of one packed row: {@code ceil(inFeatures · bits / 8)}. */
    public static long rowBytes(int bits, int inFeatures) {
        return bits == 8 ? inFeatures : BitPacking.packedBytes(inFeatures, bits);
    }

    /** Largest code magnitude: 2^(bits−1) − 1 (7 for 4 bits). */
    public static int qmax(int bits) {
        return (1 << (bits - 1)) - 1;
    }

    private static int offset(int bits) {
        return 1 << (bits - 1);
    }

    /**
     * Signed codes of row {@code j} into {@code dst[0, inFeatures)}; {@code dst} must hold at least
     * {@code inFeatures} bytes.
     */
    public void unpackRow(int j, byte[] dst) {
        long at = j * rowBytes;
        if (bits == 8) {
            MemorySegment.copy(codes, ValueLayout.JAVA_BYTE, at, dst, 0, inFeatures);
        } else {
            BitPacking.unpack(bits, codes, at, dst, 0, inFeatures);
        }
        byte offset = (byte) offset(bits);
        for (int k = 0; k < inFeatures; k++) {
            dst[k] -= offset;
        }
    }

    /** FP32 weights (out, in) into {@code dst}, row-major: what W4A16 multiplies with. */
    public void dequantize(MemorySegment dst) {
        int groups = groups();
        CpuParallelism.forEach(Math.ceilDiv(outFeatures, ROWS_PER_TASK), t -> {
            byte[] row = new byte[inFeatures];
            for (int j = t * ROWS_PER_TASK, end = Math.min(outFeatures, j + ROWS_PER_TASK); j < end; j++) {
                unpackRow(j, row);
                long base = (long) j * inFeatures;
                for (int g = 0; g < groups; g++) {
                    float scale = scales[j * groups + g];
                    for (int k = g * groupSize, to = Math.min(inFeatures, k + groupSize); k < to; k++) {
                        dst.setAtIndex(F32, base + k, row[k] * scale);
                    }
                }
            }
        });
    }

    public int bits() {
        return bits;
    }

    /** Input columns per scale ({@code inFeatures} when per output channel). */
    public int groupSize() {
        return groupSize;
    }

    public int groups() {
        return Math.ceilDiv(inFeatures, groupSize);
    }

    public int outFeatures() {
        return outFeatures;
    }

    public int inFeatures() {
        return inFeatures;
    }

    /** Scale of output channel {@code j} in group {@code g}. */
    public float scale(int j, int g) {
        return scales[j * groups() + g];
    }

    /** Bytes the weights take in memory: packed codes plus FP32 scales. */
    public long bytes() {
        return codes.byteSize() + (long) scales.length * Float.BYTES;
    }

    private static void store(int bits, byte[] row, MemorySegment codes, long at) {
        if (bits == 8) {
            MemorySegment.copy(row, 0, codes, ValueLayout.JAVA_BYTE, at, row.length);
        } else {
            BitPacking.pack(bits, row, 0, row.length, codes, at);
        }
    }

    private static void checkBits(int bits) {
        if (bits != 3 && bits != 4 && bits != 8) {
            throw new IllegalArgumentException("packed weights have 3, 4 or 8 bits, got " + bits);
        }
    }
}
