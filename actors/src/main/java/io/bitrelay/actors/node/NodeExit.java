package io.bitrelay.actors.node;

import org.apache.pekko.actor.CoordinatedShutdown;

/**
 * Exit codes of a {@code bitrelay node} process, so that whoever started it (LocalCluster, systemd, a pod's restart
 * policy) can tell a node the cluster gave up on from one that was stopped or failed (docs/failover.md).
 */
public final class NodeExit {
    /** Stopped on request (SIGTERM, SIGINT) or left the cluster on its own. */
    public static final int STOPPED = 0;
    /** An error: start-up failed, or the actor system stopped for a reason not listed here. */
    public static final int FAILED = 1;
    /**
     * The cluster removed this node: it was downed (unreachable longer than detection, e.g. paused by a long GC,
     * SIGSTOP or a VM stall) or quarantined by a member. Its actor system cannot rejoin, so the process exits; a
     * restart joins as a new node. 75 is sysexits' EX_TEMPFAIL: try again.
     */
    public static final int REMOVED_FROM_CLUSTER = 75;

    /** Why a node's actor system shut down when this node's cluster peers quarantined it (see {@link QuarantineExit}). */
    public static final CoordinatedShutdown.Reason QUARANTINED = new CoordinatedShutdown.Reason() {
        @Override
        public String toString() {
            return "quarantined by a cluster member";
        }
    };

    private NodeExit() {
    }

    /** The exit code for an actor system that shut down for {@code reason}. */
    public static int codeFor(CoordinatedShutdown.Reason reason) {
        if (reason == QUARANTINED || reason == CoordinatedShutdown.clusterDowningReason()) {
            return REMOVED_FROM_CLUSTER;
        }
        if (reason == CoordinatedShutdown.jvmExitReason() || reason == CoordinatedShutdown.clusterLeavingReason()) {
            return STOPPED;
        }
        return FAILED;
    }
}
