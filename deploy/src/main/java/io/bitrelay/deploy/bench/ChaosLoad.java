package io.bitrelay.deploy.bench;

import io.bitrelay.actors.coordinator.FinishReason;
import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.gateway.GenerationBackend;
import io.bitrelay.actors.gateway.TokenListener;
import io.bitrelay.runtime.generate.SamplingParams;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Steady load for a chaos run: {@code clients} closed-loop clients, each sending its next greedy completion (EOS
 * ignored, so each yields exactly max tokens) as soon as the previous one ends, until {@link #stop}. Requests go to
 * the gateway's backend in this JVM, the path its HTTP endpoints take, so every token is timed as it arrives (an HTTP
 * stream's text events may hold a token's bytes back). Tokens and failures go to a {@link TokenTimeline}.
 */
final class ChaosLoad {
    private final GenerationBackend backend;
    private final List<int[]> prompts;
    private final int maxTokens;
    private final TokenTimeline timeline;
    private final AtomicInteger next = new AtomicInteger();
    private final AtomicLong completed = new AtomicLong();
    private final CountDownLatch stopped;
    private volatile boolean stopping;

    ChaosLoad(GenerationBackend backend, List<int[]> prompts, int clients, int maxTokens, TokenTimeline timeline) {
        if (clients < 1) {
            throw new IllegalArgumentException("a chaos load needs at least one client, got " + clients);
        }
        this.backend = backend;
        this.prompts = List.copyOf(prompts);
        this.maxTokens = maxTokens;
        this.timeline = timeline;
        this.stopped = new CountDownLatch(clients);
    }

    /** Each client sends its first request now. */
    void start() {
        for (long i = stopped.getCount(); i > 0; i--) {
            send();
        }
    }

    long completed() {
        return completed.get();
    }

    /** No client sends another request; waits at most {@code timeout} for the ones in flight. */
    boolean stop(Duration timeout) throws InterruptedException {
        stopping = true;
        return stopped.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    private void send() {
        if (stopping) {
            stopped.countDown();
            return;
        }
        int index = next.getAndIncrement();
        GenerationJob job = new GenerationJob("chaos-" + index, prompts.get(index % prompts.size()), maxTokens,
                SamplingParams.greedy(), false);
        try {
            backend.submit(job, new Listener());
        } catch (RuntimeException rejected) {
            timeline.failure(System.nanoTime(), "not accepted: " + rejected.getMessage());
            // Sent again from a thread of its own, not in a tight loop on this one.
            Thread.ofVirtual().start(() -> {
                sleepQuietly(100);
                send();
            });
        }
    }

    /** One request's events; its end sends the client's next request (from a thread of its own, not the gateway's). */
    private final class Listener implements TokenListener {
        private int tokens;

        @Override
        public void onToken(int tokenId) {
            tokens++;
            timeline.token(System.nanoTime());
        }

        @Override
        public void onFinished(FinishReason reason) {
            if (tokens != maxTokens) {
                timeline.failure(System.nanoTime(), "got " + tokens + " of " + maxTokens + " tokens (" + reason + ")");
            } else {
                completed.incrementAndGet();
            }
            Thread.ofVirtual().start(ChaosLoad.this::send);
        }

        @Override
        public void onFailed(String reason) {
            timeline.failure(System.nanoTime(), reason);
            Thread.ofVirtual().start(ChaosLoad.this::send);
        }
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
