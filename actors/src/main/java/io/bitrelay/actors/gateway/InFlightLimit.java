package io.bitrelay.actors.gateway;

import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The gateway's bound on completions admitted and not yet ended ({@code bitrelay.gateway.max-in-flight}), queued
 * ones included: beyond it a request is refused at once with 429, as the single-process backend refuses beyond its
 * queue, instead of waiting in an unbounded queue until its client has given up (issue 16: 400 requests at once
 * gave 304 client time-outs and no 429). Refusals throw the {@link RejectedExecutionException} a full backend
 * throws, so both become the same answer.
 */
final class InFlightLimit {
    private final int max;
    private final AtomicInteger inFlight = new AtomicInteger();

    InFlightLimit(int max) {
        this.max = max;
    }

    /** Takes a place; give it back with {@link #release()} exactly once. */
    void acquire() {
        int now;
        do {
            now = inFlight.get();
            if (now >= max) {
                throw new RejectedExecutionException(now + " requests are already in flight (limit " + max + ", "
                        + GatewaySettings.PATH + ".max-in-flight); retry later");
            }
        } while (!inFlight.compareAndSet(now, now + 1));
    }

    void release() {
        inFlight.decrementAndGet();
    }

    int inFlight() {
        return inFlight.get();
    }
}
