package io.bitrelay.deploy.bench;

import java.util.ArrayList;
import java.util.List;

/**
 * When each token of a load arrived and when each request failed (System.nanoTime), so that a rate can be taken over
 * any window afterwards: the steady state before a kill and the window after it come from the same record.
 */
final class TokenTimeline {
    /** A failed request: when its client learnt it, and why. */
    record Failure(long atNanos, String reason) {
    }

    private final List<Long> tokens = new ArrayList<>();
    private final List<Failure> failures = new ArrayList<>();

    synchronized void token(long atNanos) {
        tokens.add(atNanos);
    }

    synchronized void failure(long atNanos, String reason) {
        failures.add(new Failure(atNanos, reason));
    }

    /** Tokens that arrived in [fromNanos, toNanos). */
    synchronized long tokensBetween(long fromNanos, long toNanos) {
        return tokens.stream().filter(t -> t >= fromNanos && t < toNanos).count();
    }

    /** Tokens per second in [fromNanos, toNanos). */
    double rate(long fromNanos, long toNanos) {
        if (toNanos <= fromNanos) {
            throw new IllegalArgumentException("an empty window: " + fromNanos + " to " + toNanos);
        }
        return tokensBetween(fromNanos, toNanos) / ((toNanos - fromNanos) / 1e9);
    }

    /** The first token that arrived at or after {@code fromNanos}, or −1 when none did. */
    synchronized long firstTokenFrom(long fromNanos) {
        return tokens.stream().mapToLong(Long::longValue).filter(t -> t >= fromNanos).min().orElse(-1);
    }

    /**
     * The start of the first window of {@code spanNanos}, starting at or after {@code fromNanos} (in steps of a tenth of
     * the span) and ending by {@code untilNanos}, whose rate is at least {@code tokensPerSecond}; −1 if none is.
     */
    long firstWindowAtRate(long fromNanos, long untilNanos, long spanNanos, double tokensPerSecond) {
        if (spanNanos <= 0) {
            throw new IllegalArgumentException("the window must be positive, got " + spanNanos + " ns");
        }
        for (long start = fromNanos; start + spanNanos <= untilNanos; start += spanNanos / 10) {
            if (rate(start, start + spanNanos) >= tokensPerSecond) {
                return start;
            }
        }
        return -1;
    }

    /** Failures in [fromNanos, toNanos). */
    synchronized List<Failure> failuresBetween(long fromNanos, long toNanos) {
        return failures.stream().filter(f -> f.atNanos() >= fromNanos && f.atNanos() < toNanos).toList();
    }

    synchronized long totalTokens() {
        return tokens.size();
    }

    synchronized List<Failure> failures() {
        return new ArrayList<>(failures);
    }
}
