package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.FinishReason;

import io.bitrelay.actors.coordinator.GenerationJob;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** A backend for gateway tests that plays a token script on a timer and can fail, refuse or hang on demand. */
final class ScriptedBackend implements GenerationBackend, AutoCloseable {
    enum Mode {
        /** Plays the script until max tokens or cancellation. */
        TOKENS,
        /** Two tokens, then onFailed. */
        FAIL_AFTER_TWO,
        /** submit throws RejectedExecutionException. */
        REJECT,
        /** Accepts and never says anything until cancelled. */
        SILENT,
        /** No token, then onUnavailable (no pipeline served the job in time). */
        UNAVAILABLE,
        /** Never queued: onOverloaded (the coordinator's queue is full), as the cluster backend hears it. */
        OVERLOADED,
        /** Queued, one token, then onDeadline (the coordinator's request-deadline passed). */
        DEADLINE
    }

    volatile Mode mode = Mode.TOKENS;
    volatile int[] script = {100};
    volatile long tokenIntervalMillis = 2;
    volatile boolean ready = true;
    final List<GenerationJob> submitted = new CopyOnWriteArrayList<>();
    final Set<String> cancelled = ConcurrentHashMap.newKeySet();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();

    @Override
    public void submit(GenerationJob job, TokenListener listener) {
        Mode now = mode;
        if (now == Mode.REJECT) {
            throw new RejectedExecutionException("7 requests are already waiting (test limit 7)");
        }
        submitted.add(job);
        if (now == Mode.OVERLOADED) {
            timer.execute(() -> listener.onOverloaded("9 requests are already waiting in the coordinator's queue (test limit 9)"));
            return;
        }
        listener.onQueued();
        int[] tokens = script;
        AtomicInteger emitted = new AtomicInteger();
        ScheduledFuture<?>[] self = new ScheduledFuture<?>[1];
        Runnable tick = () -> {
            if (cancelled.contains(job.requestId())) {
                listener.onFinished(FinishReason.CANCELLED);
            } else if (now == Mode.SILENT) {
                return;
            } else if (now == Mode.DEADLINE && emitted.get() == 1) {
                listener.onDeadline("the request did not finish within its deadline of 0.05 s (test)");
            } else if (now == Mode.UNAVAILABLE) {
                listener.onUnavailable("no pipeline could serve the request within 0.05 s");
            } else if (now == Mode.FAIL_AFTER_TWO && emitted.get() == 2) {
                listener.onFailed("stage 3 lost");
            } else if (emitted.get() == job.maxNewTokens()) {
                listener.onFinished(FinishReason.MAX_TOKENS);
            } else {
                listener.onToken(tokens[emitted.getAndIncrement() % tokens.length]);
                return;
            }
            self[0].cancel(false);
        };
        synchronized (self) {
            self[0] = timer.scheduleWithFixedDelay(() -> {
                synchronized (self) {
                    tick.run();
                }
            }, tokenIntervalMillis, tokenIntervalMillis, TimeUnit.MILLISECONDS);
        }
    }

    @Override
    public void cancel(String requestId) {
        cancelled.add(requestId);
    }

    @Override
    public int queueDepth() {
        return 3;
    }

    @Override
    public boolean ready() {
        return ready;
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
