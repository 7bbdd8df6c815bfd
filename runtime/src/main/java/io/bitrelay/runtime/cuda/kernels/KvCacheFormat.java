package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.model.opt.KvPrecision;

import java.util.Locale;

/**
 * How a GPU stage stores its sequences' keys and values (attention.cu): FP16 rows, or INT8 codes with an FP32
 * scale and minimum per (token, head) — the CPU path's {@link KvPrecision#INT8} scheme, at half the bytes plus 8 per
 * (token, head), which is what bandwidth-bound decode attention reads.
 */
public enum KvCacheFormat {
    FP16,
    INT8;

    /** The format serving {@code precision}: the exact CPU cache (FP32) is FP16 on the GPU; 4 and 3 bits have no GPU kernels. */
    public static KvCacheFormat of(KvPrecision precision) {
        return switch (precision) {
            case FP32 -> FP16;
            case INT8 -> INT8;
            case INT4, INT3 -> throw new IllegalArgumentException("GPU stages keep an FP16 or INT8 KV cache (kv-cache fp32 or "
                    + "int8); " + precision.optionName() + " is served by CPU workers only");
        };
    }

    /** {@code fp16} or {@code int8}, as benchmark options spell it. */
    public static KvCacheFormat parse(String name) {
        return switch (name) {
            case "fp16" -> FP16;
            case "int8" -> INT8;
            default -> throw new IllegalArgumentException("KV cache format must be fp16 or int8, got '" + name + "'");
        };
    }

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Device bytes of one layer's K (or V) block for {@code capacity} tokens: codes, then INT8's params. */
    public long blockBytes(int capacity, int hidden, int heads) {
        return this == FP16 ? (long) capacity * hidden * Short.BYTES : paramsOffset(capacity, hidden) + (long) capacity * heads * 8;
    }

    /** Where an INT8 block's {scale, minimum} table starts: after its (capacity, hidden) codes, as attention.cu reads it. */
    public static long paramsOffset(int capacity, int hidden) {
        return (long) capacity * hidden;
    }
}
