package io.bitrelay.runtime.ops.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * The one pool every CPU kernel splits its work over. Sized by {@code bitrelay.cpu.threads}
 * (default: the available processors) so a stage never oversubscribes the cores it was given.
 */
public final class CpuParallelism {
    private static final int THREADS = Integer.getInteger("bitrelay.cpu.threads",
            Runtime.getRuntime().availableProcessors());
    private static final ForkJoinPool POOL = new ForkJoinPool(Math.max(1, THREADS));

    private CpuParallelism() {
    }

    public static int threads() {
        return POOL.getParallelism();
    }

    /** Runs {@code body} for every task index in [0, tasks), spread over the pool; returns when all are done. */
    public static void forEach(int tasks, IntConsumer body) {
        if (tasks <= 0) {
            return;
        }
        if (tasks == 1 || POOL.getParallelism() == 1) {
            for (int t = 0; t < tasks; t++) {
                body.accept(t);
            }
            return;
        }
        POOL.submit(() -> IntStream.range(0, tasks).parallel().forEach(body)).join();
    }
}
