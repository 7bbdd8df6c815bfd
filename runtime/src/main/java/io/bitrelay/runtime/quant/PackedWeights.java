package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.ops.cpu.CpuParallelism;
import io.bitrelay.runtime.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Low-bit weights, one {@link WeightGrid} per output channel or per (output channel, group of {@code groupSize}
 * input columns), stored packed: {@code w[j,k] ≈ scale[j,g] · (u[j,k] − zero[j,g])}, {@code g = k / groupSize},
 * unsigned codes {@code u} through {@link BitPacking} (8 bits: one byte each); each row starts on a byte boundary
 * ({@link #rowBytes}), so any row can be unpacked on its own.
 *
 * <p>Symmetric (every zero {@code 2^(bits−1)}, codes {@code zero ± (2^(bits−1) − 1)}) or asymmetric (3 and 4 bits:
 * a zero point per channel or group, all {@code 2^bits} levels). {@link #unpackRow} hands out {@code u − zero},
 * a signed byte in both cases (never −128, as {@code Int8MatMul} requires), so consumers need no zero-point term.
 * Only asymmetric weights store their zero points (tensor {@code zeros}); a file without them is symmetric.
 */
public final class PackedWeights {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final int ROWS_PER_TASK = 32;

    private final MemorySegment codes; // (outFeatures, rowBytes) packed unsigned codes
    private final float[] scales;      // (outFeatures, groups)
    private final byte[] zeros;        // (outFeatures, groups) unsigned zero points
    private final boolean asymmetric;
    private final int bits;
    private final int groupSize;       // input columns per scale; == inFeatures for per-output-channel
    private final int outFeatures;
    private final int inFeatures;
    private final long rowBytes;

    private PackedWeights(MemorySegment codes, float[] scales, byte[] zeros, boolean asymmetric, int bits, int groupSize,
                          int outFeatures, int inFeatures) {
        this.codes = codes;
        this.scales = scales;
        this.zeros = zeros;
        this.asymmetric = asymmetric;
        this.bits = bits;
        this.groupSize = groupSize;
        this.outFeatures = outFeatures;
        this.inFeatures = inFeatures;
        this.rowBytes = rowBytes(bits, inFeatures);
    }

    /**
     * Symmetric round-to-nearest.
     *
     * @param groupSize input columns per scale; 0 = one scale per output channel
     */
    public static PackedWeights quantize(Linear fp32, int bits, int groupSize, Arena arena) {
        return quantize(fp32, bits, groupSize, false, arena);
    }

    /** Round-to-nearest, on {@link WeightGrid}s with zero points when {@code asymmetric}. */
    public static PackedWeights quantize(Linear fp32, int bits, int groupSize, boolean asymmetric, Arena arena) {
        return quantize(fp32.weight(), fp32.outFeatures(), fp32.inFeatures(), bits, groupSize, asymmetric, arena);
    }

    /** Quantizes {@code weight} (out, in) FP32, row-major, into {@code arena}, symmetric. */
    public static PackedWeights quantize(MemorySegment weight, int out, int in, int bits, int groupSize, Arena arena) {
        return quantize(weight, out, in, bits, groupSize, false, arena);
    }

    /** Quantizes {@code weight} (out, in) FP32, row-major, into {@code arena}. */
    public static PackedWeights quantize(MemorySegment weight, int out, int in, int bits, int groupSize, boolean asymmetric,
                                         Arena arena) {
        int group = groupSize == 0 || groupSize >= in ? in : groupSize;
        int groups = Math.ceilDiv(in, group);
        return build(out, in, bits, groupSize, asymmetric, (j, row, grids) -> {
            double[] w = new double[in];
            float[] f = new float[in];
            MemorySegment.copy(weight, F32, (long) j * in * Float.BYTES, f, 0, in);
            for (int k = 0; k < in; k++) {
                w[k] = f[k];
            }
            for (int g = 0; g < groups; g++) {
                int from = g * group;
                int to = Math.min(in, from + group);
                WeightGrid grid = WeightGrid.of(w, from, to, bits, asymmetric);
                grids[g] = grid;
                for (int k = from; k < to; k++) {
                    row[k] = (byte) grid.code(f[k]);
                }
            }
        }, arena);
    }

    /** Fills one output channel's unsigned codes (each on its group's grid) and its grids, one per group. */
    @FunctionalInterface
    interface RowQuantizer {
        void quantize(int row, byte[] codes, WeightGrid[] grids);
    }

    /**
     * Weights whose codes and scales {@code quantizer} chooses row by row (rows in parallel, so it must not
     * share mutable state between rows): round-to-nearest here, error-compensating in {@link Gptq}.
     *
     * @param groupSize input columns per scale; 0 = one scale per output channel
     */
    static PackedWeights build(int out, int in, int bits, int groupSize, boolean asymmetric, RowQuantizer quantizer,
                               Arena arena) {
        checkBits(bits, asymmetric);
        int group = groupSize == 0 || groupSize >= in ? in : groupSize;
        int groups = Math.ceilDiv(in, group);
        long rowBytes = rowBytes(bits, in);
        MemorySegment codes = arena.allocate(out * rowBytes, 64);
        float[] scales = new float[out * groups];
        byte[] zeros = new byte[out * groups];
        CpuParallelism.forEach(Math.ceilDiv(out, ROWS_PER_TASK), t -> {
            byte[] row = new byte[in];
            WeightGrid[] grids = new WeightGrid[groups];
            for (int j = t * ROWS_PER_TASK, end = Math.min(out, j + ROWS_PER_TASK); j < end; j++) {
                quantizer.quantize(j, row, grids);
                for (int k = 0; k < in; k++) {
                    WeightGrid grid = grids[k / group];
                    int u = row[k] & 0xff;
                    if (u < grid.lo() || u > grid.hi()) {
                        throw new IllegalStateException("row " + j + " column " + k + ": code " + u
                                + " outside [" + grid.lo() + ", " + grid.hi() + "]");
                    }
                }
                for (int g = 0; g < groups; g++) {
                    scales[j * groups + g] = grids[g].scale();
                    zeros[j * groups + g] = (byte) grids[g].zero();
                }
                store(bits, row, codes, j * rowBytes);
            }
        });
        return new PackedWeights(codes, scales, zeros, asymmetric, bits, group, out, in);
    }

    /** Rebuilds weights saved through {@link #tensors(List)} and {@link #settings(Map)}; copied into {@code arena}. */
    static PackedWeights restore(Map<String, String> settings, Map<String, MemorySegment> tensors, Arena arena) {
        int out = StoredLinears.intSetting(settings, "out_features");
        int in = StoredLinears.intSetting(settings, "in_features");
        int bits = StoredLinears.intSetting(settings, "weight_bits");
        int group = StoredLinears.intSetting(settings, "group_size");
        boolean asymmetric = settings.containsKey(ZERO_POINT_SETTING);
        checkBits(bits, asymmetric);
        if (group < 1 || group > in) {
            throw new IllegalArgumentException("stored group_size " + group + " is not in [1, " + in + "]");
        }
        int groups = Math.ceilDiv(in, group);
        MemorySegment codes = StoredLinears.copy(tensors, "codes", out * rowBytes(bits, in), arena);
        float[] scales = StoredLinears.copy(tensors, "scales", (long) out * groups * Float.BYTES, arena)
                .toArray(ValueLayout.JAVA_FLOAT);
        byte[] zeros = new byte[out * groups];
        if (asymmetric) {
            if (!"asymmetric".equals(settings.get(ZERO_POINT_SETTING))) {
                throw new IllegalArgumentException("stored " + ZERO_POINT_SETTING + " is '" + settings.get(ZERO_POINT_SETTING)
                        + "', this build reads 'asymmetric'");
            }
            MemorySegment.copy(StoredLinears.copy(tensors, "zeros", (long) out * groups, arena), ValueLayout.JAVA_BYTE, 0,
                    zeros, 0, zeros.length);
        } else {
            Arrays.fill(zeros, (byte) offset(bits));
        }
        return new PackedWeights(codes, scales, zeros, asymmetric, bits, group, out, in);
    }

    /** Present (as "asymmetric") exactly when the weights have zero points of their own. */
    private static final String ZERO_POINT_SETTING = "weight_zero_point";

    void tensors(List<StoredLinear.Tensor> list) {
        list.add(new StoredLinear.Tensor("codes", DType.U8, new long[]{outFeatures, rowBytes}, codes));
        list.add(new StoredLinear.Tensor("scales", DType.F32, new long[]{outFeatures, groups()},
                MemorySegment.ofArray(scales)));
        if (asymmetric) {
            list.add(new StoredLinear.Tensor("zeros", DType.U8, new long[]{outFeatures, groups()}, MemorySegment.ofArray(zeros)));
        }
    }

    void settings(Map<String, String> settings) {
        settings.put("out_features", Integer.toString(outFeatures));
        settings.put("in_features", Integer.toString(inFeatures));
        settings.put("weight_bits", Integer.toString(bits));
        settings.put("group_size", Integer.toString(groupSize));
        if (asymmetric) {
            settings.put(ZERO_POINT_SETTING, "asymmetric");
        }
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
     * Codes minus zero points, {@code u − zero}, of row {@code j} into {@code dst[0, inFeatures)}; {@code dst}
     * must hold at least {@code inFeatures} bytes.
     */
    public void unpackRow(int j, byte[] dst) {
        long at = j * rowBytes;
        if (bits == 8) {
            MemorySegment.copy(codes, ValueLayout.JAVA_BYTE, at, dst, 0, inFeatures);
        } else {
            BitPacking.unpack(bits, codes, at, dst, 0, inFeatures);
        }
        int groups = groups();
        for (int g = 0; g < groups; g++) {
            int zero = zeros[j * groups + g] & 0xff;
            for (int k = g * groupSize, to = Math.min(inFeatures, k + groupSize); k < to; k++) {
                dst[k] = (byte) ((dst[k] & 0xff) - zero);
            }
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

    /** Whether the channels (groups) have zero points of their own. */
    public boolean asymmetric() {
        return asymmetric;
    }

    /** Zero point (unsigned code of 0) of output channel {@code j} in group {@code g}. */
    public int zero(int j, int g) {
        return zeros[j * groups() + g] & 0xff;
    }

    /** Scale of output channel {@code j} in group {@code g}. */
    public float scale(int j, int g) {
        return scales[j * groups() + g];
    }

    /** Bytes the weights take in memory: packed codes plus FP32 scales (plus byte zero points, asymmetric). */
    public long bytes() {
        return codes.byteSize() + (long) scales.length * Float.BYTES + (asymmetric ? zeros.length : 0);
    }

    private static void store(int bits, byte[] row, MemorySegment codes, long at) {
        if (bits == 8) {
            MemorySegment.copy(row, 0, codes, ValueLayout.JAVA_BYTE, at, row.length);
        } else {
            BitPacking.pack(bits, row, 0, row.length, codes, at);
        }
    }

    private static void checkBits(int bits, boolean asymmetric) {
        if (bits != 3 && bits != 4 && bits != 8) {
            throw new IllegalArgumentException("packed weights have 3, 4 or 8 bits, got " + bits);
        }
        if (asymmetric && bits == 8) {
            // u − zero spans ±255 at 8 bits: no signed byte for the integer GEMM
            throw new IllegalArgumentException("asymmetric weights have 3 or 4 bits, got 8");
        }
    }
}
