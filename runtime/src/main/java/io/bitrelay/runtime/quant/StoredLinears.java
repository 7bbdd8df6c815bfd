package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Map;

/** Rebuilds a saved {@link StoredLinear} by its kind; one case per quantized linear type. */
public final class StoredLinears {
    private StoredLinears() {
    }

    /**
     * @param tensors the layer's tensors by suffix name, as {@link StoredLinear#tensors()} named them
     * @throws IllegalArgumentException naming an unknown kind, a missing setting or a tensor of the wrong size
     */
    public static StoredLinear restore(String kind, Map<String, String> settings, Map<String, MemorySegment> tensors,
                                       Arena arena) {
        return switch (kind) {
            case W8A8Linear.KIND -> W8A8Linear.restore(settings, tensors, arena);
            case WeightOnlyLinear.KIND -> WeightOnlyLinear.restore(settings, tensors, arena);
            case LowBitLinear.KIND -> LowBitLinear.restore(settings, tensors, arena);
            default -> throw new IllegalArgumentException("unknown stored linear kind '" + kind + "'");
        };
    }

    /**
     * Bytes a linear takes in memory: its stored tensors for a {@link StoredLinear}, FP32 weight and bias
     * otherwise (a {@link GatheredLinear} adds its permutation).
     */
    public static long bytes(LinearLayer linear) {
        return switch (linear) {
            case StoredLinear stored -> stored.tensors().stream().mapToLong(t -> t.data().byteSize()).sum();
            case GatheredLinear gathered -> bytes(gathered.linear()) + 4L * gathered.gather().length;
            case Linear fp32 -> fp32.weight().byteSize() + (fp32.bias() == null ? 0 : fp32.bias().byteSize());
            default -> throw new IllegalArgumentException("cannot size " + linear.getClass().getSimpleName());
        };
    }

    static String setting(Map<String, String> settings, String name) {
        String value = settings.get(name);
        if (value == null) {
            throw new IllegalArgumentException("stored linear lacks setting '" + name + "'");
        }
        return value;
    }

    static int intSetting(Map<String, String> settings, String name) {
        return Integer.parseInt(setting(settings, name));
    }

    /** A copy of tensor {@code name} in {@code arena}, checked to hold exactly {@code bytes}. */
    static MemorySegment copy(Map<String, MemorySegment> tensors, String name, long bytes, Arena arena) {
        MemorySegment source = tensors.get(name);
        if (source == null) {
            throw new IllegalArgumentException("stored linear lacks tensor '" + name + "'");
        }
        if (source.byteSize() != bytes) {
            throw new IllegalArgumentException("stored tensor '" + name + "' has " + source.byteSize()
                    + " bytes, expected " + bytes);
        }
        MemorySegment copy = arena.allocate(bytes, 64);
        copy.copyFrom(source);
        return copy;
    }
}
