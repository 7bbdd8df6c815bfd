package io.bitrelay.actors.gateway;

/**
 * What the gateway generates with: the cluster (coordinator + pipeline of stage workers) or, for a single
 * process, the local model. Jobs are admitted in submission order.
 */
public interface GenerationBackend {
    void submit(GenerationJob job, TokenListener listener);

    /** Stops a job early (client went away, stop string seen); its listener gets onFinished(CANCELLED). */
    void cancel(String requestId);

    /** Jobs waiting for admission, for /metrics. */
    int queueDepth();
}
