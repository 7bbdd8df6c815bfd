package io.bitrelay.actors.worker;

import io.bitrelay.runtime.wire.BatchLayout;

/**
 * A stage's step wall times split by kind: steps that hold prompt rows (prefill, or prompt chunks beside decode
 * rows) and decode-only steps. The phase counters average over both, which hides what a first token waits for; the
 * stage leaves this split in its log when it closes. Compute thread only.
 */
final class StepDurations {
    private final long[] count = new long[2];
    private final long[] nanos = new long[2];
    private final long[] maxNanos = new long[2];

    void record(BatchLayout layout, long stepNanos) {
        int kind = holdsPrompt(layout) ? 1 : 0;
        count[kind]++;
        nanos[kind] += stepNanos;
        maxNanos[kind] = Math.max(maxNanos[kind], stepNanos);
    }

    private static boolean holdsPrompt(BatchLayout layout) {
        for (BatchLayout.Entry entry : layout.entries()) {
            if (entry.tokenCount() > 1 || entry.startPosition() == 0) {
                return true;
            }
        }
        return false;
    }

    String summary() {
        return describe("decode-only", 0) + "; " + describe("with prompt rows", 1);
    }

    private String describe(String label, int kind) {
        return count[kind] == 0 ? "no steps " + label
                : String.format("%d steps %s, mean %.2f ms, max %.2f ms", count[kind], label,
                nanos[kind] / 1e6 / count[kind], maxNanos[kind] / 1e6);
    }
}
