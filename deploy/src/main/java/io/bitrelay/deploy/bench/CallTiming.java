package io.bitrelay.deploy.bench;

import java.util.Arrays;

/** Seconds per call of a short operation, timed in repeats of at least a given length (the CPU benches' clock). */
final class CallTiming {
    private CallTiming() {
    }

    /** Elapsed / calls over one repeat: {@code call} runs until at least {@code repeatMillis} have passed. */
    static double secondsPerCall(Runnable call, long repeatMillis) {
        long start = System.nanoTime();
        long deadline = start + repeatMillis * 1_000_000;
        long calls = 0;
        long now;
        do {
            call.run();
            calls++;
            now = System.nanoTime();
        } while (now < deadline);
        return (now - start) / 1e9 / calls;
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
