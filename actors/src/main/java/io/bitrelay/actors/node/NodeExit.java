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
     * The cluster downed this node: it was unreachable longer than detection (paused by a long GC, SIGSTOP or a VM
     * stall; cut off). Pekko runs coordinated shutdown when the node learns it (its peers' quarantine answers its first
     * messages after a pause, and it shuts down as downed: measured 2.3 s after SIGCONT); an actor system the cluster
     * removed can never rejoin, so the process exits, and a restart joins as a new node. 75 is sysexits' EX_TEMPFAIL:
     * try again.
     */
    public static final int REMOVED_FROM_CLUSTER = 75;
    /**
     * No coordinator node was a member for bitrelay.worker.orphan-timeout (they were all lost): the worker gave up
     * waiting ({@link OrphanWatch}). 69 is sysexits' EX_UNAVAILABLE; a restart joins once a coordinator node is back.
     */
    public static final int NO_COORDINATOR = 69;

    private NodeExit() {
    }

    /** The exit code for an actor system that shut down for {@code reason}. */
    public static int codeFor(CoordinatedShutdown.Reason reason) {
        if (reason == CoordinatedShutdown.clusterDowningReason()) {
            return REMOVED_FROM_CLUSTER;
        }
        if (reason == OrphanWatch.NoCoordinator.REASON) {
            return NO_COORDINATOR;
        }
        if (reason == CoordinatedShutdown.jvmExitReason() || reason == CoordinatedShutdown.clusterLeavingReason()) {
            return STOPPED;
        }
        return FAILED;
    }
}
