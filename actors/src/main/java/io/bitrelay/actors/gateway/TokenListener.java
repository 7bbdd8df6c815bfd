package io.bitrelay.actors.gateway;

/**
 * Receives one job's tokens in order, then exactly one terminal call. Calls may come from any thread
 * but never concurrently for one job.
 */
public interface TokenListener {
    void onToken(int tokenId);

    /** @param reason EOS, MAX_TOKENS or CANCELLED */
    void onFinished(FinishReason reason);

    /** The job failed (a corrupt frame, a worker lost, …); {@code reason} is for the client. */
    void onFailed(String reason);

    enum FinishReason { EOS, MAX_TOKENS, CANCELLED }
}
