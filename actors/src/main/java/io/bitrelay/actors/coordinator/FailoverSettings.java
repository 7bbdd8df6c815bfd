package io.bitrelay.actors.coordinator;

import com.typesafe.config.Config;

import java.time.Duration;

/**
 * What the coordinator does when a worker is lost, from {@code bitrelay.coordinator} (docs/failover.md).
 *
 * @param pendingTimeout longest a request waits while no pipeline serves (pending-timeout), then it fails with 503
 * @param minWorkers     fewest workers a lost pipeline is rebuilt over when no standby takes a lost worker's place
 *                       (min-workers; 0 in the config = expected-workers)
 */
public record FailoverSettings(Duration pendingTimeout, int minWorkers) {
    public static final String PENDING_TIMEOUT_KEY = "bitrelay.coordinator.pending-timeout";

    public FailoverSettings {
        if (pendingTimeout.isNegative() || pendingTimeout.isZero()) {
            throw new IllegalArgumentException(PENDING_TIMEOUT_KEY + " must be > 0, got " + pendingTimeout);
        }
        if (minWorkers < 1) {
            throw new IllegalArgumentException("bitrelay.coordinator.min-workers must be ≥ 1 (or 0 = expected-workers), got "
                    + minWorkers);
        }
    }

    /** From {@code bitrelay.coordinator} ({@code c}), with min-workers 0 standing for {@code expectedWorkers}. */
    static FailoverSettings from(Config c, int expectedWorkers) {
        int minWorkers = c.getInt("min-workers");
        if (minWorkers < 0) {
            throw new IllegalArgumentException("bitrelay.coordinator.min-workers must be ≥ 0 (0 = expected-workers), got " + minWorkers);
        }
        return new FailoverSettings(c.getDuration("pending-timeout"), minWorkers == 0 ? expectedWorkers : minWorkers);
    }

    /** How often waiting requests are checked against {@link #pendingTimeout}: a tenth of it, 50 ms to 1 s. */
    Duration checkInterval() {
        long millis = Math.clamp(pendingTimeout.toMillis() / 10, 50, 1000);
        return Duration.ofMillis(millis);
    }
}
