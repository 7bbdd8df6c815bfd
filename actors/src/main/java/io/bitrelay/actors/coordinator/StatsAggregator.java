package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.serialization.ClusterMessage;
import io.bitrelay.actors.worker.StageStats;
import io.bitrelay.actors.worker.StageWorker;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

import java.time.Duration;
import java.util.List;

/**
 * A request-scoped child of the coordinator: asks every stage for its counters and answers once all
 * have replied, or when the deadline passes with what it has (naming the stages that stayed silent).
 */
public final class StatsAggregator {
    /**
     * Counters of every stage, in stage order; {@code missing} names stages that did not answer in time;
     * {@code firstTokens} is the coordinator's share of time to first token when the collection began.
     */
    public record PipelineStats(StageStats[] stages, String missing, FirstTokenTimes firstTokens) implements ClusterMessage {
    }

    private sealed interface Event {
    }

    private record Arrived(StageStats stats) implements Event {
    }

    private record Deadline() implements Event {
    }

    private StatsAggregator() {
    }

    static Behavior<Event> create(List<ActorRef<StageWorker.Command>> stages, FirstTokenTimes firstTokens,
                                  ActorRef<PipelineStats> replyTo, Duration timeout) {
        return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
            ActorRef<StageStats> adapter = context.messageAdapter(StageStats.class, Arrived::new);
            stages.forEach(stage -> stage.tell(new StageWorker.ReportStats(adapter)));
            timers.startSingleTimer(new Deadline(), timeout);
            StageStats[] collected = new StageStats[stages.size()];
            int[] received = {0};
            return Behaviors.receive(Event.class)
                    .onMessage(Arrived.class, m -> {
                        int index = m.stats().stageIndex();
                        if (index >= 0 && index < collected.length && collected[index] == null) {
                            collected[index] = m.stats();
                            received[0]++;
                        }
                        if (received[0] == collected.length) {
                            replyTo.tell(new PipelineStats(collected, null, firstTokens));
                            return Behaviors.stopped();
                        }
                        return Behaviors.same();
                    })
                    .onMessage(Deadline.class, m -> {
                        StringBuilder missing = new StringBuilder();
                        for (int i = 0; i < collected.length; i++) {
                            if (collected[i] == null) {
                                missing.append(missing.isEmpty() ? "" : ", ").append("stage ").append(i);
                            }
                        }
                        replyTo.tell(new PipelineStats(collected, "no answer within " + timeout + " from " + missing, firstTokens));
                        return Behaviors.stopped();
                    })
                    .build();
        }));
    }
}
