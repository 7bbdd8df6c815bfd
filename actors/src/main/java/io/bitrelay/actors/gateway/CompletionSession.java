package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.FinishReason;

import io.bitrelay.actors.gateway.GatewayMetrics.Outcome;

/**
 * One admitted completion: receives the backend's tokens, turns them into client text (detokenized, cut
 * at stop strings), hands that to a {@link Sink} (a JSON body being collected, or an SSE stream) and ends
 * exactly once: finished, failed, cancelled by the client, or timed out. Whatever ends it first wins; later
 * calls are ignored, which also absorbs tokens the backend sends after a stop string asked it to cancel.
 */
final class CompletionSession implements TokenListener {
    /** Where the client's text goes. Called under the session's lock, one call at a time. */
    interface Sink {
        /** @return false when nobody reads any more (the client went away) */
        boolean text(String delta);

        /** @param finishReason "stop" or "length" */
        void finished(String finishReason, OpenAiJson.Usage usage);

        /** @param code OpenAI's error code ("queue_full", …), or null */
        void failed(int status, String type, String message, String code);

        /** The backend queued the job: nothing it says from now on is a refusal. */
        default void queued() {
        }

        /** A chunk of the prompt's scores (echo + logprobs). */
        default void promptScores(java.util.List<io.bitrelay.runtime.eval.TokenScore> scores) {
        }

        /** The score of the token whose text comes next. */
        default void tokenScore(io.bitrelay.runtime.eval.TokenScore score) {
        }
    }

    private final String requestId;
    private final GenerationBackend backend;
    private final GatewayMetrics metrics;
    private final CompletionText text;
    private final int promptTokens;
    private final long arrivalNanos;
    private final Sink sink;
    private int completionTokens;
    private boolean ended;
    private Runnable onEnd = () -> { };

    CompletionSession(String requestId, GenerationBackend backend, GatewayMetrics metrics, CompletionText text,
                      int promptTokens, long arrivalNanos, Sink sink) {
        this.requestId = requestId;
        this.backend = backend;
        this.metrics = metrics;
        this.text = text;
        this.promptTokens = promptTokens;
        this.arrivalNanos = arrivalNanos;
        this.sink = sink;
    }

    @Override
    public synchronized void onToken(int tokenId) {
        if (ended) {
            return;
        }
        if (completionTokens++ == 0) {
            metrics.firstToken(System.nanoTime() - arrivalNanos);
        }
        metrics.tokenGenerated();
        String delta = text.append(tokenId);
        if (!delta.isEmpty() && !sink.text(delta)) {
            clientGone();
            return;
        }
        if (text.stopped()) {
            backend.cancel(requestId);
            sink.finished("stop", usage());
            end(Outcome.OK);
        }
    }

    @Override
    public synchronized void onPromptScores(java.util.List<io.bitrelay.runtime.eval.TokenScore> scores) {
        if (!ended) {
            sink.promptScores(scores);
        }
    }

    @Override
    public synchronized void onTokenScore(io.bitrelay.runtime.eval.TokenScore score) {
        if (!ended) {
            sink.tokenScore(score);
        }
    }

    @Override
    public synchronized void onFinished(FinishReason reason) {
        if (ended) {
            return;
        }
        switch (reason) {
            case EOS, MAX_TOKENS -> {
                String rest = text.finish();
                if (!rest.isEmpty() && !sink.text(rest)) {
                    clientGone();
                    return;
                }
                sink.finished(reason == FinishReason.EOS || text.stopped() ? "stop" : "length", usage());
                end(Outcome.OK);
            }
            case CANCELLED -> {
                sink.failed(503, "server_error", "the backend cancelled the generation", null);
                end(Outcome.FAILED);
            }
        }
    }

    @Override
    public synchronized void onFailed(String reason) {
        if (ended) {
            return;
        }
        sink.failed(500, "server_error", "generation failed: " + reason, null);
        end(Outcome.FAILED);
    }

    /** No pipeline could serve the job in time: 503, as a refusal for want of a server (not a failure of this job). */
    @Override
    public synchronized void onUnavailable(String reason) {
        if (ended) {
            return;
        }
        sink.failed(503, "server_error", "The server had no pipeline to serve the request: " + reason, null);
        end(Outcome.REJECTED);
    }

    @Override
    public synchronized void onQueued() {
        if (!ended) {
            sink.queued();
        }
    }

    /** The coordinator's queue is full: 429 with Retry-After, as the gateway's own max-in-flight answers. */
    @Override
    public synchronized void onOverloaded(String reason) {
        if (ended) {
            return;
        }
        sink.failed(429, "server_overloaded", "The server is busy: " + reason, "queue_full");
        end(Outcome.REJECTED);
    }

    /** The coordinator gave up on the job at its deadline and freed its sequence: 504, nothing to cancel. */
    @Override
    public synchronized void onDeadline(String reason) {
        if (ended) {
            return;
        }
        sink.failed(504, "timeout", reason, null);
        end(Outcome.TIMEOUT);
    }

    /** The client disconnected (or the response stream ended): stop generating for it. */
    synchronized void clientGone() {
        if (ended) {
            return;
        }
        backend.cancel(requestId);
        end(Outcome.CANCELLED);
    }

    /** The request timeout passed. */
    synchronized void timedOut(String message) {
        if (ended) {
            return;
        }
        backend.cancel(requestId);
        sink.failed(504, "timeout", message, null);
        end(Outcome.TIMEOUT);
    }

    /** Runs {@code action} when the session ends (now, if it already has), after those registered before it. */
    synchronized void whenEnded(Runnable action) {
        if (ended) {
            action.run();
        } else {
            Runnable before = onEnd;
            onEnd = () -> {
                before.run();
                action.run();
            };
        }
    }

    synchronized boolean ended() {
        return ended;
    }

    private OpenAiJson.Usage usage() {
        return new OpenAiJson.Usage(promptTokens, completionTokens);
    }

    private void end(Outcome outcome) {
        ended = true;
        metrics.ended(outcome, System.nanoTime() - arrivalNanos);
        onEnd.run();
    }
}
