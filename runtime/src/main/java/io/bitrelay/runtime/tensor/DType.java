package io.bitrelay.runtime.tensor;

import java.util.Locale;

/** Element types of stored tensors, named as safetensors names them. */
public enum DType {
    F32("F32", 4),
    F16("F16", 2),
    BF16("BF16", 2),
    I8("I8", 1),
    U8("U8", 1),
    I32("I32", 4),
    I64("I64", 8);

    private final String safetensorsName;
    private final int byteSize;

    DType(String safetensorsName, int byteSize) {
        this.safetensorsName = safetensorsName;
        this.byteSize = byteSize;
    }

    public String safetensorsName() {
        return safetensorsName;
    }

    public int byteSize() {
        return byteSize;
    }

    /** @throws IllegalArgumentException naming the unknown type */
    public static DType fromSafetensors(String name) {
        for (DType type : values()) {
            if (type.safetensorsName.equals(name)) {
                return type;
            }
        }
        throw new IllegalArgumentException("unsupported safetensors dtype '" + name + "'");
    }

    /** Parses the storage-type names users write on the command line and in configs (fp16, bf16, fp32). */
    public static DType fromUserName(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "fp32", "f32", "float32", "float" -> F32;
            case "fp16", "f16", "float16", "half" -> F16;
            case "bf16", "bfloat16" -> BF16;
            default -> throw new IllegalArgumentException("unknown storage dtype '" + name + "' (expected fp32, fp16 or bf16)");
        };
    }
}
