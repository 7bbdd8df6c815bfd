package io.bitrelay.deploy.cluster;

import com.typesafe.config.Config;

import java.time.Duration;

/**
 * How often a local cluster starts a worker JVM again that exited (bitrelay.local-cluster.restart): at most
 * {@code maxRestarts} restarts of one worker within {@code within}, each after a backoff that doubles from
 * {@code minBackoff} up to {@code maxBackoff} with the restarts already made within that window. A worker that keeps
 * failing (a bad setting, a port taken, a model it cannot load) thus stops being restarted instead of looping.
 */
record WorkerRestartPolicy(int maxRestarts, Duration within, Duration minBackoff, Duration maxBackoff) {
    static final String PREFIX = "bitrelay.local-cluster.restart.";

    WorkerRestartPolicy {
        if (maxRestarts < 0) {
            throw new IllegalArgumentException(PREFIX + "max-restarts must be >= 0, got " + maxRestarts);
        }
        if (minBackoff.isNegative() || maxBackoff.compareTo(minBackoff) < 0) {
            throw new IllegalArgumentException(PREFIX + "min-backoff (" + minBackoff + ") must be >= 0 and <= "
                    + PREFIX + "max-backoff (" + maxBackoff + ")");
        }
    }

    static WorkerRestartPolicy from(Config config) {
        return new WorkerRestartPolicy(config.getInt(PREFIX + "max-restarts"), config.getDuration(PREFIX + "within"),
                config.getDuration(PREFIX + "min-backoff"), config.getDuration(PREFIX + "max-backoff"));
    }

    /** The wait before the next restart, given {@code recentRestarts} made within the window. */
    Duration backoff(int recentRestarts) {
        long millis = minBackoff.toMillis() << Math.min(recentRestarts, 20);
        return Duration.ofMillis(Math.min(millis, maxBackoff.toMillis()));
    }
}
