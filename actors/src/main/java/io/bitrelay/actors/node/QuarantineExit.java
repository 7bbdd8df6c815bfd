package io.bitrelay.actors.node;

import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.eventstream.EventStream;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.remote.artery.ThisActorSystemQuarantinedEvent;

/**
 * Shuts a worker node down once a cluster member has quarantined it. A worker paused longer than detection (SIGSTOP,
 * a long GC, a VM stall) is downed by the coordinator's node and removed while it cannot hear it; when it resumes,
 * its first message to a member is answered with "quarantined", not with the gossip that would have told it it was
 * downed. Pekko leaves acting on that to the downing strategy; left alone the node lingers as an orphan, its stage
 * still running and its Aeron client dead, until its own resolver downs it (stable-after later). A quarantined
 * actor system can never rejoin, so the only useful move is to run coordinated shutdown and let the process exit
 * ({@link NodeExit#REMOVED_FROM_CLUSTER}) to be restarted as a new node.
 */
final class QuarantineExit {
    private QuarantineExit() {
    }

    static Behavior<ThisActorSystemQuarantinedEvent> create() {
        return Behaviors.setup(context -> {
            context.getSystem().eventStream().tell(new EventStream.Subscribe<>(ThisActorSystemQuarantinedEvent.class,
                    context.getSelf()));
            return Behaviors.receiveMessage(event -> {
                context.getLog().warn("{} quarantined this node: leaving the cluster for good, the process exits",
                        event.remoteAddress().address());
                CoordinatedShutdown.get(context.getSystem()).run(NodeExit.QUARANTINED);
                return Behaviors.same();
            });
        });
    }
}
