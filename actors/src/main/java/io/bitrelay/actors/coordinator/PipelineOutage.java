package io.bitrelay.actors.coordinator;

import java.time.Duration;
import java.util.OptionalLong;

/**
 * A time during which no pipeline serves (the coordinator starting, or a lost worker's pipeline being rebuilt): why,
 * and since when. Requests queued during it wait at most {@code bitrelay.coordinator.pending-timeout}, counted from
 * their arrival or from the outage's start, whichever is later (a request that was running when the worker was lost
 * waits from the loss).
 */
final class PipelineOutage {
    private final String cause;
    private final long sinceNanos;

    PipelineOutage(String cause, long sinceNanos) {
        this.cause = cause;
        this.sinceNanos = sinceNanos;
    }

    String cause() {
        return cause;
    }

    long millisSince(long nowNanos) {
        return (nowNanos - sinceNanos) / 1_000_000;
    }

    /**
     * The queue time at or before which a request has waited longer than {@code timeout} at {@code nowNanos}; empty
     * while the outage itself is younger than that (nothing has).
     */
    OptionalLong expiredQueuedBy(long nowNanos, Duration timeout) {
        long cutoff = nowNanos - timeout.toNanos();
        return cutoff - sinceNanos < 0 ? OptionalLong.empty() : OptionalLong.of(cutoff);
    }
}
