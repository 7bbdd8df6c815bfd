package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.worker.StageWorker;
import org.apache.pekko.actor.typed.Behavior;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * One handler per kind of worker answer ({@link StageWorker.Reply}), for a phase's behaviour. The answers reach the
 * coordinator wrapped in {@link Coordinator.WorkerReplied} by its message adapter ({@link PhaseHost#replies()}); a phase
 * adds {@code .onMessage(Coordinator.WorkerReplied.class, routes::handles, routes::route)}, and an answer of a kind it
 * names no handler for goes on to the handlers after.
 */
final class ReplyRoutes {
    private record Route<R extends StageWorker.Reply>(Class<R> kind, Function<? super R, Behavior<Coordinator.Command>> handler) {
        Behavior<Coordinator.Command> apply(StageWorker.Reply reply) {
            return handler.apply(kind.cast(reply));
        }
    }

    private final List<Route<?>> routes;

    private ReplyRoutes(List<Route<?>> routes) {
        this.routes = routes;
    }

    static <R extends StageWorker.Reply> ReplyRoutes of(Class<R> kind, Function<? super R, Behavior<Coordinator.Command>> handler) {
        return new ReplyRoutes(List.of(new Route<>(kind, handler)));
    }

    <R extends StageWorker.Reply> ReplyRoutes and(Class<R> kind, Function<? super R, Behavior<Coordinator.Command>> handler) {
        List<Route<?>> more = new ArrayList<>(routes);
        more.add(new Route<>(kind, handler));
        return new ReplyRoutes(List.copyOf(more));
    }

    boolean handles(Coordinator.WorkerReplied message) {
        return find(message.reply()) != null;
    }

    Behavior<Coordinator.Command> route(Coordinator.WorkerReplied message) {
        return find(message.reply()).apply(message.reply());
    }

    private Route<?> find(StageWorker.Reply reply) {
        for (Route<?> route : routes) {
            if (route.kind().isInstance(reply)) {
                return route;
            }
        }
        return null;
    }
}
