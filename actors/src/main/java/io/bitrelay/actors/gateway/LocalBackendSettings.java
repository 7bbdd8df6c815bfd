package io.bitrelay.actors.gateway;

import com.typesafe.config.Config;
import io.bitrelay.actors.coordinator.SchedulerSettings;

/**
 * Tunables of {@link LocalGenerationBackend}, read from {@code bitrelay.local-backend} in HOCON.
 *
 * @param maxBatchSize   {@code max-batch-size}: sequences generated together in one forward step; more
 *                       raises throughput and each request's per-token latency (default 8)
 * @param maxWaitingJobs {@code max-waiting-jobs}: jobs queued for admission before new ones are refused
 *                       with 429 (default 256)
 * @param maxBatchTokens {@code max-batch-tokens}: tokens in one forward step at most; a scored prompt goes in
 *                       chunks of what is left, a generating prompt waits for room (one longer than this runs
 *                       alone) (default 2048)
 */
public record LocalBackendSettings(int maxBatchSize, int maxWaitingJobs, int maxBatchTokens) {
    public static final String PATH = "bitrelay.local-backend";

    public LocalBackendSettings {
        if (maxBatchSize < 1) {
            throw new IllegalArgumentException(PATH + ".max-batch-size must be >= 1, got " + maxBatchSize);
        }
        if (maxWaitingJobs < 0) {
            throw new IllegalArgumentException(PATH + ".max-waiting-jobs must be >= 0, got " + maxWaitingJobs);
        }
        if (maxBatchTokens < 1) {
            throw new IllegalArgumentException(PATH + ".max-batch-tokens must be >= 1, got " + maxBatchTokens);
        }
    }

    public static LocalBackendSettings defaults() {
        return new LocalBackendSettings(8, 256, 2048);
    }

    /**
     * The cluster's scheduler limits for a one-stage pipeline: one resident micro-batch, which holds every active
     * sequence, so a sequence's KV cache lives exactly as long as it is admitted.
     */
    SchedulerSettings schedulerSettings() {
        return new SchedulerSettings(1, maxBatchSize, maxBatchTokens, maxBatchSize);
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
                config.hasPath("max-waiting-jobs") ? config.getInt("max-waiting-jobs") : defaults.maxWaitingJobs(),
                config.hasPath("max-batch-tokens") ? config.getInt("max-batch-tokens") : defaults.maxBatchTokens());
    }
}
