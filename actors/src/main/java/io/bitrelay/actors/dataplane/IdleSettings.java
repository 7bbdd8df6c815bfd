package io.bitrelay.actors.dataplane;

import com.typesafe.config.Config;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

import java.time.Duration;

/**
 * How an idle data-plane thread waits (driver duty cycle, subscriber agent, publisher retries): a few
 * spins, a few yields, then parks that double from {@code minParkNanos} up to {@code maxParkNanos}
 * (Agrona's {@link BackoffIdleStrategy}). While frames flow the thread stays within tens of microseconds
 * of the next one; after a quiet spell it wakes only every {@code maxParkNanos}, so several JVMs on a
 * couple of cores do not take the CPU away from the compute the way busy-spinning would.
 *
 * @param maxSpins      busy spins after the last unit of work before yielding
 * @param maxYields     {@link Thread#yield()} calls before parking
 * @param minParkNanos  first park period
 * @param maxParkNanos  longest park period: the worst-case added latency once idle, and 1 s / this is
 *                      the wake-up rate of an idle thread
 */
public record IdleSettings(long maxSpins, long maxYields, long minParkNanos, long maxParkNanos) {

    public IdleSettings {
        if (maxSpins < 0) {
            throw new IllegalArgumentException("idle max-spins must be >= 0, got " + maxSpins);
        }
        if (maxYields < 0) {
            throw new IllegalArgumentException("idle max-yields must be >= 0, got " + maxYields);
        }
        if (minParkNanos < 1) {
            throw new IllegalArgumentException("idle min-park-nanos must be >= 1, got " + minParkNanos);
        }
        if (maxParkNanos < minParkNanos) {
            throw new IllegalArgumentException("idle max-park-nanos (" + maxParkNanos
                    + ") must be >= min-park-nanos (" + minParkNanos + ")");
        }
    }

    /**
     * From {@code bitrelay.dataplane.idle}: {@code max-spins}, {@code max-yields}, {@code min-park} and
     * {@code max-park} (durations, or "auto" for {@code autoMaxPark}: what suits the threads' JVM).
     *
     * @throws IllegalArgumentException naming the key, for a value out of range
     */
    public static IdleSettings from(Config idle, Duration autoMaxPark) {
        try {
            Duration maxPark = idle.getString("max-park").equals("auto") ? autoMaxPark : idle.getDuration("max-park");
            return new IdleSettings(idle.getLong("max-spins"), idle.getLong("max-yields"),
                    idle.getDuration("min-park").toNanos(), maxPark.toNanos());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bitrelay.dataplane.idle: " + e.getMessage(), e);
        }
    }

    /** With max-park auto: a GPU worker's steps take milliseconds, so a frame must not wait up to a millisecond more. */
    public static final Duration GPU_MAX_PARK = Duration.ofNanos(50_000);
    /** With max-park auto: a CPU worker's steps take tens of milliseconds, and its cores are its compute. */
    public static final Duration CPU_MAX_PARK = Duration.ofMillis(1);

    /** Default for every data-plane thread: 10 spins, 5 yields, parks from 10 µs up to 1 ms. */
    public static IdleSettings backoff() {
        return new IdleSettings(10, 5, 10_000, 1_000_000);
    }

    /** Never spins or yields: always parks {@code parkNanos} (like Agrona's SleepingIdleStrategy). */
    public static IdleSettings sleeping(long parkNanos) {
        return new IdleSettings(0, 0, parkNanos, parkNanos);
    }

    public IdleSettings withMaxParkNanos(long nanos) {
        return new IdleSettings(maxSpins, maxYields, Math.min(minParkNanos, nanos), nanos);
    }

    /** A fresh strategy: idle strategies keep state, so every thread needs its own. */
    public IdleStrategy newIdleStrategy() {
        return new BackoffIdleStrategy(maxSpins, maxYields, minParkNanos, maxParkNanos);
    }
}
