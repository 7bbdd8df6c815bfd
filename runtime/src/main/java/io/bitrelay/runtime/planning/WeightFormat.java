package io.bitrelay.runtime.planning;

import java.util.List;
import java.util.Locale;

/**
 * How a stage stores and multiplies its weights, as far as capacity planning cares: bytes per parameter
 * (scales included) and whether the GEMMs run on the INT8 or the FP16 tensor cores.
 */
public record WeightFormat(String name, double bytesPerParameter, boolean int8Math) {
    public static final WeightFormat FP16 = new WeightFormat("fp16", 2.0, false);
    /** INT8 codes plus one FP32 scale per output channel (negligible at these widths). */
    public static final WeightFormat W8A8 = new WeightFormat("w8a8", 1.0, true);
    /** 4-bit codes plus an FP16 scale per group of 128: 0.5 + 2/128 bytes. */
    public static final WeightFormat W4A16 = new WeightFormat("w4a16", 0.5 + 2.0 / 128, false);
    public static final WeightFormat W4A8 = new WeightFormat("w4a8", 0.5 + 2.0 / 128, true);
    public static final List<WeightFormat> ALL = List.of(FP16, W8A8, W4A16, W4A8);

    public static WeightFormat byName(String name) {
        String wanted = name.toLowerCase(Locale.ROOT);
        return ALL.stream().filter(f -> f.name.equals(wanted)).findFirst().orElseThrow(() ->
                new IllegalArgumentException("unknown weight format '" + name + "' (known: "
                        + String.join(", ", ALL.stream().map(WeightFormat::name).toList()) + ")"));
    }
}
