package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.FinishReason;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/** A TokenListener for tests: keeps the tokens, completes {@link #end} with the finish reason or the failure. */
class RecordingListener implements TokenListener {
    final List<Integer> tokens = new CopyOnWriteArrayList<>();
    final CompletableFuture<Object> end = new CompletableFuture<>();
    private volatile boolean terminated;
    volatile boolean calledAfterEnd;

    @Override
    public void onToken(int tokenId) {
        calledAfterEnd |= terminated;
        tokens.add(tokenId);
    }

    @Override
    public void onFinished(FinishReason reason) {
        calledAfterEnd |= terminated;
        terminated = true;
        end.complete(reason);
    }

    @Override
    public void onFailed(String reason) {
        calledAfterEnd |= terminated;
        terminated = true;
        end.complete("failed: " + reason);
    }

    Object awaitEnd() throws Exception {
        return end.get(20, TimeUnit.SECONDS);
    }

    int[] tokenArray() {
        return tokens.stream().mapToInt(Integer::intValue).toArray();
    }
}
