package io.bitrelay.runtime.planning;

import java.util.List;
import java.util.Locale;

/**
 * What the planner needs to know of one accelerator: memory, memory bandwidth and dense peak throughput.
 * Peaks are datasheet figures (dense, no sparsity); the planner applies its own efficiency factors.
 */
public record DeviceProfile(String name, long memoryBytes, double memoryBytesPerSecond, double fp16FlopsPerSecond,
                            double int8OpsPerSecond) {
    public static final DeviceProfile H200 = new DeviceProfile("h200", 143_000_000_000L, 4.8e12, 989e12, 1979e12);
    public static final DeviceProfile H100_80G = new DeviceProfile("h100-80g", 80_000_000_000L, 3.35e12, 989e12, 1979e12);
    public static final DeviceProfile A100_80G = new DeviceProfile("a100-80g", 80_000_000_000L, 2.0e12, 312e12, 624e12);
    public static final List<DeviceProfile> PRESETS = List.of(H200, H100_80G, A100_80G);

    public DeviceProfile {
        if (memoryBytes <= 0 || memoryBytesPerSecond <= 0 || fp16FlopsPerSecond <= 0 || int8OpsPerSecond <= 0) {
            throw new IllegalArgumentException("device profile " + name + " needs positive memory, bandwidth and peaks");
        }
    }

    public static DeviceProfile byName(String name) {
        String wanted = name.toLowerCase(Locale.ROOT);
        return PRESETS.stream().filter(p -> p.name.equals(wanted)).findFirst().orElseThrow(() ->
                new IllegalArgumentException("unknown device '" + name + "' (known: "
                        + String.join(", ", PRESETS.stream().map(DeviceProfile::name).toList()) + ")"));
    }

    public DeviceProfile withMemoryBytes(long bytes) {
        return new DeviceProfile(name, bytes, memoryBytesPerSecond, fp16FlopsPerSecond, int8OpsPerSecond);
    }
}
