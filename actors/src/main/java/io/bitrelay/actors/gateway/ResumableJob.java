package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.coordinator.JobEvent;
import org.apache.pekko.actor.typed.ActorRef;

import java.util.Arrays;

/**
 * A job the gateway sent to the coordinator, with what its client has received so far: if the coordinator is lost
 * and another takes over (the singleton hands over), the job is sent again as a {@link Coordinator.Resume} and goes
 * on from there, its client seeing a pause and no token twice (docs/failover.md, "Coordinator hand-over").
 */
final class ResumableJob {
    final GenerationJob job;
    final TokenListener listener;
    /** The client's own deadline from submission, or 0 for request-deadline. */
    private final long deadlineMillis;
    private final long submittedNanos;
    private int[] tokens = new int[0];
    private int generated;
    private int promptScores;
    /** The listener heard onQueued: a coordinator that takes the job over queues it again, unannounced. */
    boolean queued;
    /** Its client went away or a stop string ended it; a hand-over finishes it instead of resuming it. */
    boolean cancelRequested;

    ResumableJob(GenerationJob job, TokenListener listener, long deadlineMillis, long submittedNanos) {
        this.job = job;
        this.listener = listener;
        this.deadlineMillis = deadlineMillis;
        this.submittedNanos = submittedNanos;
    }

    void received(int token) {
        if (generated == tokens.length) {
            tokens = Arrays.copyOf(tokens, Math.max(16, 2 * tokens.length));
        }
        tokens[generated++] = token;
    }

    void receivedPromptScores(int count) {
        promptScores += count;
    }

    int tokensSoFar() {
        return generated;
    }

    /** What the coordinator that took over needs to go on where the client is. */
    Coordinator.Resume resumption(ActorRef<JobEvent> replyTo, long nowNanos) {
        long left = 0;
        if (deadlineMillis > 0) {
            // what is left of the client's deadline; at least 1 ms, so an expired one fails there (0 means none)
            left = Math.max(1, deadlineMillis - (nowNanos - submittedNanos) / 1_000_000);
        }
        return new Coordinator.Resume(job, Arrays.copyOf(tokens, generated), promptScores, replyTo, left);
    }
}
