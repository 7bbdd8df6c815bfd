package io.bitrelay.actors.gateway;

import com.typesafe.config.Config;

/**
 * Tunables of {@link LocalGenerationBackend}, read from {@code bitrelay.local-backend} in HOCON.
 *
 * @param maxBatchSize   {@code max-batch-size}: sequences generated together in one forward step; more
 *                       raises throughput and each request's per-token latency (default 8)
 * @param maxWaitingJobs {@code max-waiting-jobs}: jobs queued for admission before new ones are refused
 *                       with 429 (default 256)
 */
public record LocalBackendSettings(int maxBatchSize, int maxWaitingJobs) {
    public static final String PATH = "bitrelay.local-backend";

    public LocalBackendSettings {
        if (maxBatchSize < 1) {
            throw new IllegalArgumentException(PATH + ".max-batch-size must be >= 1, got " + maxBatchSize);
        }
        if (maxWaitingJobs < 0) {
            throw new IllegalArgumentException(PATH + ".max-waiting-jobs must be >= 0, got " + maxWaitingJobs);
        }
    }

    public static LocalBackendSettings defaults() {
        return new LocalBackendSettings(8, 256);
    }

    /** Reads {@value #PATH}; missing keys take the defaults. */
    public static LocalBackendSettings fromConfig(Config root) {
        LocalBackendSettings defaults = defaults();
        if (!root.hasPath(PATH)) {
            return defaults;
        }
        Config config = root.getConfig(PATH);
        return new LocalBackendSettings(
                config.hasPath("max-batch-size") ? config.getInt("max-batch-size") : defaults.maxBatchSize(),
                config.hasPath("max-waiting-jobs") ? config.getInt("max-waiting-jobs") : defaults.maxWaitingJobs());
    }
}
