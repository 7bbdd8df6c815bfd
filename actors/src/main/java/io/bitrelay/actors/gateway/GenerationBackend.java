package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.GenerationJob;

/**
 * What the gateway generates with: the cluster (coordinator + pipeline of stage workers) or, for a single
 * process, the local model. Jobs are admitted in submission order.
 */
public interface GenerationBackend {
    /**
     * Queues a job; its tokens go to {@code listener}. Returns at once; the work happens elsewhere.
     *
     * @throws IllegalArgumentException the job cannot run on this model (empty prompt, a token outside the
     *         vocabulary, prompt + maxNewTokens over the context); the gateway answers 400
     * @throws java.util.concurrent.RejectedExecutionException the backend cannot take the job now (its
     *         queue is full, it is shutting down); the message says why and the gateway answers 429. In
     *         both cases nothing was queued and the listener is never called.
     */
    void submit(GenerationJob job, TokenListener listener);

    /**
     * Stops a job early (client went away, stop string seen); its listener gets onFinished(CANCELLED).
     * Unknown or finished ids are ignored. May be called from any thread, including from inside one of the
     * job's own {@link TokenListener} callbacks (the gateway does so when it sees a stop string), so it must
     * not block on the thread that delivers tokens.
     */
    void cancel(String requestId);

    /** Jobs waiting for admission, for /metrics. */
    int queueDepth();

    /**
     * What serves, for /v1/models (and so for a client labelling its measurements): e.g. the recipe, the link
     * codec, the KV cache precision. Keys are snake_case; empty when there is nothing to say.
     */
    default java.util.Map<String, String> describe() {
        return java.util.Map.of();
    }

    /** Whether the backend can serve jobs now (model loaded, pipeline complete), for /health. */
    default boolean ready() {
        return true;
    }
}
