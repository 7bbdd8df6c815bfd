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
 * Downs a worker's node as soon as the failure detector marks it unreachable, while the coordinator's side of the
 * cluster holds a majority of the members: the decision keep-majority would take, without waiting for the Split Brain
 * Resolver's stable-after. The coordinator has already given such a worker up (the receptionist drops it at
 * unreachability and the pipeline is rebuilt without it), so nothing is lost by not waiting.
 *
 * <p>Why not leave it to the resolver: a node that dies while another is unreachable and not yet downed has itself
 * observed that one as unreachable; Pekko's resolver then sees it as "indirectly connected", and its second decision of
 * that kind downs every node, the coordinator's included (two worker kills 6.7 s apart did that before this class).
 * Downed at once, the first node's observations stop counting. Without a majority (the coordinator's node cut off
 * from most workers) nothing is downed here and the resolver decides.
 */
final class WorkerDowning {
    private WorkerDowning() {
    }

    static Behavior<ClusterEvent.UnreachableMember> create() {
        return Behaviors.setup(context -> {
            Cluster cluster = Cluster.get(context.getSystem());
            cluster.subscriptions().tell(Subscribe.create(context.getSelf(), ClusterEvent.UnreachableMember.class));
            return Behaviors.receiveMessage(event -> {
                Member worker = event.member();
                if (!worker.hasRole(StageWorker.ROLE) || cluster.selfMember().status() != MemberStatus.up()) {
                    return Behaviors.same();
                }
                Set<Member> unreachable = cluster.state().getUnreachable();
                long members = StreamSupport.stream(cluster.state().getMembers().spliterator(), false)
                        .filter(WorkerDowning::counts).count();
                long reachable = StreamSupport.stream(cluster.state().getMembers().spliterator(), false)
                        .filter(m -> counts(m) && !unreachable.contains(m)).count();
                if (2 * reachable > members) {
                    context.getLog().warn("downing worker node {}: unreachable, {} of {} members reachable", worker.address(),
                            reachable, members);
                    cluster.manager().tell(new Down(worker.address()));
                } else {
                    context.getLog().warn("worker node {} unreachable, but only {} of {} members reachable: the split brain"
                            + " resolver decides", worker.address(), reachable, members);
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
