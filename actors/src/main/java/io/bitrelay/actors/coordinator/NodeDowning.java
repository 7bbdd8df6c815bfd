package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.worker.StageWorker;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;
import org.apache.pekko.cluster.typed.Subscribe;

import java.util.Set;
import java.util.stream.StreamSupport;

/**
 * Downs a worker's or a coordinator node's node as soon as the failure detector marks it unreachable, while this
 * node's side of the cluster holds a majority of the members: the decision keep-majority would take, without waiting
 * for the Split Brain Resolver's stable-after. Every coordinator node runs one (not only the singleton's, which may be
 * the node that died).
 *
 * <p>A worker: the coordinator has already given it up (the receptionist drops it at unreachability and the pipeline
 * is rebuilt without it), so nothing is lost by not waiting. A coordinator node: the singleton moves to the next
 * oldest coordinator node only once the lost one is downed; waiting 7 s for the resolver would add 7 s to every
 * hand-over (docs/failover.md, "Coordinator hand-over").
 *
 * <p>Why not leave it to the resolver: a node that dies while another is unreachable and not yet downed has itself
 * observed that one as unreachable; Pekko's resolver then sees it as "indirectly connected", and its second decision of
 * that kind downs every node, the coordinator's included (two worker kills 6.7 s apart did that before this class).
 * Downed at once, the first node's observations stop counting. Without a majority (this node cut off from most
 * members) nothing is downed here and the resolver decides.
 */
public final class NodeDowning {
    private NodeDowning() {
    }

    public static Behavior<ClusterEvent.UnreachableMember> create() {
        return Behaviors.setup(context -> {
            Cluster cluster = Cluster.get(context.getSystem());
            cluster.subscriptions().tell(Subscribe.create(context.getSelf(), ClusterEvent.UnreachableMember.class));
            return Behaviors.receiveMessage(event -> {
                Member lost = event.member();
                boolean downable = lost.hasRole(StageWorker.ROLE) || lost.hasRole(Coordinator.ROLE);
                if (!downable || cluster.selfMember().status() != MemberStatus.up()) {
                    return Behaviors.same();
                }
                String what = lost.hasRole(StageWorker.ROLE) ? "worker" : "coordinator";
                Set<Member> unreachable = cluster.state().getUnreachable();
                long members = StreamSupport.stream(cluster.state().getMembers().spliterator(), false)
                        .filter(NodeDowning::counts).count();
                long reachable = StreamSupport.stream(cluster.state().getMembers().spliterator(), false)
                        .filter(m -> counts(m) && !unreachable.contains(m)).count();
                if (2 * reachable > members) {
                    context.getLog().warn("downing {} node {}: unreachable, {} of {} members reachable", what, lost.address(),
                            reachable, members);
                    cluster.manager().tell(new Down(lost.address()));
                } else {
                    context.getLog().warn("{} node {} unreachable, but only {} of {} members reachable: the split brain"
                            + " resolver decides", what, lost.address(), reachable, members);
                }
                return Behaviors.same();
            });
        });
    }

    /** The members keep-majority counts: not joining, downed or exiting. */
    private static boolean counts(Member member) {
        MemberStatus status = member.status();
        return status == MemberStatus.up() || status == MemberStatus.leaving();
    }
}
