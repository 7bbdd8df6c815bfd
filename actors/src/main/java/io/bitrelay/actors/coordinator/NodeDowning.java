package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.worker.StageWorker;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;
import org.apache.pekko.cluster.typed.Subscribe;

import java.time.Duration;
import java.util.Set;
import java.util.stream.StreamSupport;

/**
 * Downs a worker's node as soon as the failure detector marks it unreachable, and a coordinator node once it has
 * stayed unreachable for {@code coordinatorDownAfter}, while this node's side of the cluster holds a majority of the
 * members: the decision keep-majority would take, without waiting for the Split Brain Resolver's stable-after. Every
 * coordinator node runs one (not only the singleton's, which may be the node that died).
 *
 * <p>A worker: the coordinator has already given it up (the receptionist drops it at unreachability and the pipeline
 * is rebuilt without it), so nothing is lost by not waiting. A coordinator node: the singleton moves to the next
 * oldest coordinator node only once the lost one is downed, and waiting for the resolver's 7 s would add them to every
 * hand-over; but a false alarm there costs more than a rebuild (the downed node's gateway drops its clients, every
 * other gateway resumes its jobs on a new coordinator), so it is downed only if it does not come back within
 * {@link #DOWN_AFTER_KEY} (docs/failover.md, "Coordinator hand-over").
 *
 * <p>Why not leave it to the resolver: a node that dies while another is unreachable and not yet downed has itself
 * observed that one as unreachable; Pekko's resolver then sees it as "indirectly connected", and its second decision of
 * that kind downs every node, the coordinator's included (two worker kills 6.7 s apart did that before this class).
 * Downed at once, the first node's observations stop counting. Without a majority (this node cut off from most
 * members) nothing is downed here and the resolver decides.
 */
public final class NodeDowning {
    public static final String DOWN_AFTER_KEY = "bitrelay.coordinator.down-coordinator-after";

    public sealed interface Command {
    }

    private record Unreachable(Member member) implements Command {
    }

    private record Reachable(Member member) implements Command {
    }

    /** A coordinator node's grace is over: down it if it is still unreachable. */
    private record GraceOver(Member member) implements Command {
    }

    private NodeDowning() {
    }

    /** @param coordinatorDownAfter how long a coordinator node may stay unreachable before it is downed */
    public static Behavior<Command> create(Duration coordinatorDownAfter) {
        return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
            Cluster cluster = Cluster.get(context.getSystem());
            ActorRef<ClusterEvent.UnreachableMember> unreachable = context.messageAdapter(ClusterEvent.UnreachableMember.class,
                    e -> new Unreachable(e.member()));
            ActorRef<ClusterEvent.ReachableMember> reachable = context.messageAdapter(ClusterEvent.ReachableMember.class,
                    e -> new Reachable(e.member()));
            cluster.subscriptions().tell(Subscribe.create(unreachable, ClusterEvent.UnreachableMember.class));
            cluster.subscriptions().tell(Subscribe.create(reachable, ClusterEvent.ReachableMember.class));
            return Behaviors.receive(Command.class)
                    .onMessage(Unreachable.class, m -> {
                        if (m.member().hasRole(StageWorker.ROLE)) {
                            downIfMajority(context, cluster, m.member(), "worker");
                        } else if (m.member().hasRole(Coordinator.ROLE)) {
                            context.getLog().warn("coordinator node {} unreachable: downed in {} unless it comes back ({})",
                                    m.member().address(), coordinatorDownAfter, DOWN_AFTER_KEY);
                            timers.startSingleTimer(m.member().address(), new GraceOver(m.member()), coordinatorDownAfter);
                        }
                        return Behaviors.same();
                    })
                    .onMessage(Reachable.class, m -> {
                        if (timers.isTimerActive(m.member().address())) {
                            context.getLog().info("coordinator node {} reachable again: not downed", m.member().address());
                            timers.cancel(m.member().address());
                        }
                        return Behaviors.same();
                    })
                    .onMessage(GraceOver.class, m -> {
                        if (stillUnreachable(cluster, m.member().address())) {
                            downIfMajority(context, cluster, m.member(), "coordinator");
                        }
                        return Behaviors.same();
                    })
                    .build();
        }));
    }

    private static boolean stillUnreachable(Cluster cluster, Address address) {
        return cluster.state().getUnreachable().stream().anyMatch(m -> m.address().equals(address));
    }

    private static void downIfMajority(ActorContext<Command> context, Cluster cluster, Member lost, String what) {
        if (cluster.selfMember().status() != MemberStatus.up()) {
            return;
        }
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
    }

    /** The members keep-majority counts: not joining, downed or exiting. */
    private static boolean counts(Member member) {
        MemberStatus status = member.status();
        return status == MemberStatus.up() || status == MemberStatus.leaving();
    }
}
