package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.quant.BitPacking;

import java.util.Arrays;
import java.util.Locale;

/**
 * How a {@link KvCache} stores keys and values. FP32 is the exact cache; the integer precisions quantize
 * each (token, head) group of {@code headDim} channels asymmetrically (see {@link QuantizedKvRows}): codes of
 * {@code bits} bits (one byte each at 8 bits, {@link BitPacking}-packed at 4 and 3) plus an FP32 scale and
 * minimum per group.
 */
public enum KvPrecision {
    FP32(32),
    INT8(8),
    INT4(4),
    INT3(3);

    private final int bits;

    KvPrecision(int bits) {
        this.bits = bits;
    }

    /** Bits per stored channel value (32 for FP32); the per-group scale and minimum come on top. */
    public int bits() {
        return bits;
    }

    public boolean quantized() {
        return this != FP32;
    }

    /** Largest code, 2^bits − 1. */
    int maxCode() {
        return (1 << bits) - 1;
    }

    /** Bytes of one (token, head) group's codes, each group starting on a byte boundary. */
    int groupCodeBytes(int headDim) {
        return switch (this) {
            case FP32 -> headDim * Float.BYTES;
            case INT8 -> headDim;
            case INT4, INT3 -> Math.toIntExact(BitPacking.packedBytes(headDim, bits));
        };
    }

    /** Bytes one token takes in one layer, keys and values together: what a cache grows by per position and layer. */
    public long bytesPerTokenPerLayer(int numHeads, int headDim) {
        long perGroup = groupCodeBytes(headDim) + (quantized() ? QuantizedKvRows.PARAMETER_BYTES_PER_GROUP : 0);
        return 2L * numHeads * perGroup;
    }

    /** Lower-case name as options spell it: fp32, int8, int4, int3. */
    public String optionName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses {@code fp32|int8|int4|int3} or a bit width {@code 32|16|8|4|3}; 16 means "not quantized" (the
     * checkpoint's FP16 keys are computed and cached in FP32 here), so it is FP32.
     */
    public static KvPrecision parse(String text) {
        String key = text.trim().toLowerCase(Locale.ROOT);
        for (KvPrecision precision : values()) {
            if (precision.optionName().equals(key) || key.equals(Integer.toString(precision.bits))) {
                return precision;
            }
        }
        if (key.equals("16")) {
            return FP32;
        }
        throw new IllegalArgumentException("unknown KV cache precision '" + text + "'; expected one of "
                + Arrays.stream(values()).map(KvPrecision::optionName).toList() + " or bits 16|8|4|3");
    }
}
