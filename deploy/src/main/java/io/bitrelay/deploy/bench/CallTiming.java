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

    /**
     * This thread's CPU seconds / calls over one repeat of at least {@code repeatMillis} CPU milliseconds. On a machine
     * shared with other jobs, the wall clock counts the time the thread waited for a core; its CPU time does not, so
     * this is what one end of a link costs a core of its own. The CPU clock is read once per batch of calls (reading
     * it is a system call), the batch doubling until it runs ≥ 1 ms.
     */
    static double cpuSecondsPerCall(Runnable call, long repeatMillis) {
        java.lang.management.ThreadMXBean threads = java.lang.management.ManagementFactory.getThreadMXBean();
        long start = threads.getCurrentThreadCpuTime();
        long deadline = start + repeatMillis * 1_000_000;
        long calls = 0;
        long batch = 1;
        long now = start;
        while (now < deadline) {
            long batchStart = now;
            for (long i = 0; i < batch; i++) {
                call.run();
            }
            calls += batch;
            now = threads.getCurrentThreadCpuTime();
            if (now - batchStart < 1_000_000) {
                batch *= 2;
            }
        }
        return (now - start) / 1e9 / calls;
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
