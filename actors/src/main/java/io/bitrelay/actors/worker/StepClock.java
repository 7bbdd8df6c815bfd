package io.bitrelay.actors.worker;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Accumulates a stage's step time per {@link StepPhase}: the compute thread laps it as a step moves on; the stats
 * reader, on another thread, takes snapshots. Costs two clock reads and an atomic add per phase, no allocation.
 */
final class StepClock {
    private final AtomicLongArray nanos = new AtomicLongArray(StepPhase.values().length);
    private long mark;

    /** A step taken up now that arrived at {@code arrivedNanos}: its wait counts as {@link StepPhase#QUEUE}. */
    void start(long arrivedNanos) {
        mark = arrivedNanos;
        lap(StepPhase.QUEUE);
    }

    /** The time since the last lap (or the start) went to {@code phase}. */
    void lap(StepPhase phase) {
        long now = System.nanoTime();
        nanos.addAndGet(phase.ordinal(), now - mark);
        mark = now;
    }

    /** Nanoseconds per phase so far, indexed by {@link StepPhase#ordinal()}. */
    long[] snapshot() {
        long[] copy = new long[nanos.length()];
        for (int i = 0; i < copy.length; i++) {
            copy[i] = nanos.get(i);
        }
        return copy;
    }
}
