package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.GenerationJob;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.coordinator.JobEvent;
import io.bitrelay.actors.coordinator.StatsAggregator;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

import java.time.Duration;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The gateway's link to the coordinator: forwards jobs, and routes the coordinator's events back to each
 * job's listener. It also keeps the coordinator's latest status for /health and /metrics.
 *
 * <p>It keeps every job in flight with what its client received so far ({@link ResumableJob}). When the status
 * comes from a coordinator of another incarnation than before, the singleton was handed over (the node that held it
 * was lost): every job still in flight is sent to the new one as a {@link Coordinator.Resume} and goes on where its
 * client is; one whose client cancelled meanwhile finishes CANCELLED here.
 */
public final class GatewayActor {
    public sealed interface Command {
    }

    /** @param deadlineMillis as {@link Coordinator.Submit#deadlineMillis()} */
    public record SubmitJob(GenerationJob job, TokenListener listener, long deadlineMillis) implements Command {
    }

    public record CancelJob(String requestId) implements Command {
    }

    /**
     * The gateway is stopping: new jobs are refused as unavailable, and the jobs still open after {@code grace} end with
     * an error their clients see (a stream gets an error event and [DONE], a whole answer 503) and are cancelled at the
     * coordinator, before the HTTP server closes their connections: without it a stream just ended, no error event, no
     * [DONE]. Answered once no job is open.
     */
    public record EndJobs(Duration grace, ActorRef<JobsEnded> replyTo) implements Command {
    }

    /** @param endedWithError jobs that were still open after the grace and ended with an error */
    public record JobsEnded(int endedWithError) {
    }

    private record GraceOver() implements Command {
    }

    private record Event(JobEvent event) implements Command {
    }

    private record PollStatus() implements Command {
    }

    private record StatusArrived(Coordinator.Status status) implements Command {
    }

    private record StatsArrived(StatsAggregator.PipelineStats stats) implements Command {
    }

    private static final Duration STATUS_INTERVAL = Duration.ofMillis(500);
    /** Link counters for /metrics every 2 s: asking every stage is heavier than a status poll. */
    private static final int STATS_EVERY_POLLS = 4;
    /** How often /metrics' pipeline counters are refreshed: a reader wanting values taken after t waits this twice after t. */
    public static final Duration STATS_INTERVAL = STATUS_INTERVAL.multipliedBy(STATS_EVERY_POLLS);

    public static Behavior<Command> create(ActorRef<Coordinator.Command> coordinator, Consumer<Coordinator.Status> statusSink,
                                           Consumer<StatsAggregator.PipelineStats> statsSink) {
        return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
            timers.startTimerWithFixedDelay(new PollStatus(), STATUS_INTERVAL);
            return new GatewayActor(context, timers, coordinator, statusSink, statsSink).running();
        }));
    }

    private final ActorContext<Command> context;
    private final ActorRef<Coordinator.Command> coordinator;
    private final Consumer<Coordinator.Status> statusSink;
    private final Consumer<StatsAggregator.PipelineStats> statsSink;
    private final ActorRef<JobEvent> events;
    private final ActorRef<Coordinator.Status> statuses;
    private final ActorRef<StatsAggregator.PipelineStats> stats;
    private int polls;
    private final Map<String, ResumableJob> jobs = new java.util.LinkedHashMap<>();
    /** The coordinator incarnation the last status came from; null before the first. */
    private String incarnation;
    private final org.apache.pekko.actor.typed.javadsl.TimerScheduler<Command> timers;
    /** Who waits for the open jobs to end ({@link EndJobs}); not empty once the gateway is stopping. */
    private final java.util.List<ActorRef<JobsEnded>> endWaiters = new java.util.ArrayList<>();
    private boolean stopping;
    private int endedWithError;

    private GatewayActor(ActorContext<Command> context, org.apache.pekko.actor.typed.javadsl.TimerScheduler<Command> timers,
                         ActorRef<Coordinator.Command> coordinator, Consumer<Coordinator.Status> statusSink,
                         Consumer<StatsAggregator.PipelineStats> statsSink) {
        this.context = context;
        this.timers = timers;
        this.coordinator = coordinator;
        this.statusSink = statusSink;
        this.statsSink = statsSink;
        this.stats = context.messageAdapter(StatsAggregator.PipelineStats.class, StatsArrived::new);
        this.events = context.messageAdapter(JobEvent.class, Event::new);
        this.statuses = context.messageAdapter(Coordinator.Status.class, StatusArrived::new);
    }

    private Behavior<Command> running() {
        return Behaviors.receive(Command.class)
                .onMessage(SubmitJob.class, m -> {
                    if (stopping) {
                        m.listener().onUnavailable("the gateway is shutting down; retry on another gateway");
                        return Behaviors.same();
                    }
                    jobs.put(m.job().requestId(), new ResumableJob(m.job(), m.listener(), m.deadlineMillis(),
                            System.nanoTime()));
                    coordinator.tell(new Coordinator.Submit(m.job(), events, m.deadlineMillis()));
                    return Behaviors.same();
                })
                .onMessage(CancelJob.class, m -> {
                    ResumableJob job = jobs.get(m.requestId());
                    if (job != null) {
                        job.cancelRequested = true;
                    }
                    coordinator.tell(new Coordinator.Cancel(m.requestId()));
                    return Behaviors.same();
                })
                .onMessage(Event.class, m -> {
                    route(m.event());
                    answerIfEnded();
                    return Behaviors.same();
                })
                .onMessage(EndJobs.class, m -> {
                    stopping = true;
                    endWaiters.add(m.replyTo());
                    if (!jobs.isEmpty() && !timers.isTimerActive(GRACE_TIMER)) {
                        context.getLog().info("the gateway is stopping: {} open request(s) get {} to finish", jobs.size(),
                                m.grace());
                        timers.startSingleTimer(GRACE_TIMER, new GraceOver(), m.grace());
                    }
                    answerIfEnded();
                    return Behaviors.same();
                })
                .onMessage(GraceOver.class, m -> {
                    endOpenJobs();
                    answerIfEnded();
                    return Behaviors.same();
                })
                .onMessage(PollStatus.class, m -> {
                    coordinator.tell(new Coordinator.GetStatus(statuses));
                    if (polls++ % STATS_EVERY_POLLS == 0) {
                        coordinator.tell(new Coordinator.CollectStats(stats));
                    }
                    return Behaviors.same();
                })
                .onMessage(StatsArrived.class, m -> {
                    statsSink.accept(m.stats());
                    return Behaviors.same();
                })
                .onMessage(StatusArrived.class, m -> {
                    handOver(m.status());
                    statusSink.accept(m.status());
                    return Behaviors.same();
                })
                .build();
    }

    private static final String GRACE_TIMER = "end-jobs-grace";

    /** The jobs still open when the gateway stops: their clients get an error, the coordinator frees their sequences. */
    private void endOpenJobs() {
        String reason = "the gateway is shutting down and the request did not finish in time; retry on another gateway";
        for (ResumableJob job : jobs.values()) {
            coordinator.tell(new Coordinator.Cancel(job.job.requestId()));
            job.listener.onUnavailable(reason);
            endedWithError++;
        }
        if (!jobs.isEmpty()) {
            context.getLog().warn("the gateway is stopping: {} open request(s) ended with an error", jobs.size());
        }
        jobs.clear();
    }

    private void answerIfEnded() {
        if (stopping && jobs.isEmpty() && !endWaiters.isEmpty()) {
            timers.cancel(GRACE_TIMER);
            endWaiters.forEach(w -> w.tell(new JobsEnded(endedWithError)));
            endWaiters.clear();
        }
    }

    /**
     * A status from a new coordinator incarnation after another: the singleton was handed over, and the jobs the lost
     * one held go to the new one from where their clients are. A job whose submission reached the new one already is
     * ignored there; events of the lost one can no longer come (its node is gone).
     */
    private void handOver(Coordinator.Status status) {
        String previous = incarnation;
        incarnation = status.incarnation();
        if (previous == null || previous.equals(status.incarnation())) {
            return;
        }
        long now = System.nanoTime();
        int resumed = 0;
        int cancelled = 0;
        for (var it = jobs.values().iterator(); it.hasNext(); ) {
            ResumableJob job = it.next();
            if (job.cancelRequested) {
                it.remove();
                job.listener.onFinished(io.bitrelay.actors.coordinator.FinishReason.CANCELLED);
                cancelled++;
            } else {
                coordinator.tell(job.resumption(events, now));
                resumed++;
            }
        }
        context.getLog().warn("the coordinator was handed over ({} → {}, now {}): {} request(s) resumed from their tokens so"
                + " far, {} cancelled ones finished", previous, status.incarnation(), status.phase().label(), resumed, cancelled);
    }

    private void route(JobEvent event) {
        ResumableJob job = jobs.get(event.requestId());
        if (job == null) {
            context.getLog().debug("event for unknown request {}", event.requestId());
            return;
        }
        TokenListener listener = job.listener;
        switch (event) {
            case JobEvent.TokenGenerated t -> {
                job.received(t.token());
                if (t.score() != null) {
                    listener.onTokenScore(t.score());
                }
                listener.onToken(t.token());
            }
            case JobEvent.PromptScored p -> {
                job.receivedPromptScores(p.scores().length);
                listener.onPromptScores(java.util.List.of(p.scores()));
            }
            case JobEvent.JobFinished f -> {
                jobs.remove(f.requestId());
                listener.onFinished(f.reason());
            }
            case JobEvent.JobQueued q -> {
                if (!job.queued) {
                    job.queued = true;
                    listener.onQueued();
                }
            }
            case JobEvent.JobFailed f -> {
                jobs.remove(f.requestId());
                switch (f.kind()) {
                    case BROKEN -> listener.onFailed(f.reason());
                    case UNAVAILABLE -> listener.onUnavailable(f.reason());
                    case OVERLOADED -> listener.onOverloaded(f.reason());
                    case DEADLINE -> listener.onDeadline(f.reason());
                }
            }
        }
    }
}
