package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.pipeline.MicroBatch;

import io.bitrelay.actors.dataplane.LinkChannels;
import io.bitrelay.actors.pipeline.StageQuantization;
import io.bitrelay.actors.pipeline.StatsChunk;
import io.bitrelay.runtime.checkpoint.ModelFingerprint;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.actors.dataplane.Link;
import io.bitrelay.actors.pipeline.LinkKey;
import io.bitrelay.runtime.wire.LinkProtection;
import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.actors.worker.WorkerDescription;
import io.bitrelay.actors.serialization.ClusterMessage;
import io.bitrelay.actors.worker.StageWorker;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.placement.LayerPlacement;
import io.bitrelay.runtime.placement.StagePlan;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.BehaviorBuilder;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The cluster singleton that owns the pipeline: it waits for the workers, places contiguous layer ranges
 * on them by memory, tells each what to load and where its links go, then schedules requests with
 * continuous batching, pushing micro-batches through the stages so that all of them work at once.
 *
 * <p>Phases: gathering → loading → [quantizing: {@link RecipeCalibration}, unless the recipe is FP32 or the
 * stages restored it from the {@link QuantizationStore}] → [calibrating: {@link LinkCalibration}, RPTQ links
 * only] → serving; failed from anywhere. The start-up phases live in their own classes.
 *
 * <p>A worker of the pipeline leaving the cluster (whatever the phase) does not fail requests: every running sequence
 * goes back to the queue to be replayed from what its client already has, the pipeline is rebuilt over a standby or
 * the survivors ({@link StageRoster}), and serves the replays first; requests wait at most pending-timeout for it
 * ({@link PipelineOutage}). docs/failover.md tells the whole story.
 */
public final class Coordinator {
    public static final String SINGLETON_NAME = "bitrelay-coordinator";
    public static final String ROLE = "coordinator";

    public sealed interface Command extends ClusterMessage {
    }

    /** Where the pipeline stands; {@link #label()} is what /health and logs show. */
    public enum Phase {
        GATHERING, LOADING, QUANTIZING, CALIBRATING, SERVING, FAILED;

        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** The receptionist's current set of workers (local only). */
    public record WorkersChanged(Set<ActorRef<StageWorker.Command>> workers) implements Command {
    }

    /** A worker's answer, through the adapter {@link PhaseHost#replies()}; {@link ReplyRoutes} hands it to a phase's handler. */
    record WorkerReplied(StageWorker.Reply reply) implements Command {
    }

    /**
     * @param deadlineMillis how long the job may take from now to its last token, if its client wants it shorter than
     *                       request-deadline; 0 = request-deadline
     */
    public record Submit(GenerationJob job, ActorRef<JobEvent> replyTo, long deadlineMillis) implements Command {
        public Submit(GenerationJob job, ActorRef<JobEvent> replyTo) {
            this(job, replyTo, 0);
        }
    }

    /**
     * A job that a coordinator lost with its node had running or queued, sent again by its gateway to the one that took
     * over (the singleton handed over): what its client already has, so it goes on from there as a replay does
     * ({@link Scheduler#resume}). A request id this coordinator already holds (its Submit reached this one) is ignored.
     *
     * @param tokensSoFar           the tokens its client received, in order
     * @param promptScoresDelivered a scoring job's prompt scores its client received
     * @param deadlineMillis        as {@link Submit#deadlineMillis()}: what is left of the client's own deadline, or 0
     */
    public record Resume(GenerationJob job, int[] tokensSoFar, int promptScoresDelivered, ActorRef<JobEvent> replyTo,
                         long deadlineMillis) implements Command {
    }

    public record Cancel(String requestId) implements Command {
    }

    public record GetStatus(ActorRef<Status> replyTo) implements Command {
    }

    /**
     * A worker about to stop (SIGTERM: a rolling restart) asks to be taken out first: the coordinator never places it
     * again, and when it holds a stage the pipeline is rebuilt without it (a standby takes its stage, or the survivors
     * the model) and its sequences are replayed there, as after a loss but without waiting for detection. The answer
     * comes once the worker holds nothing the coordinator needs; then it leaves the cluster and exits.
     */
    public record DrainWorker(ActorRef<StageWorker.Command> worker, String workerId, ActorRef<WorkerDrained> replyTo)
            implements Command {
    }

    /**
     * The whole cluster is stopping (`bitrelay cluster` closing, every worker about to get SIGTERM): from now on a
     * worker that drains or leaves is only taken out, no pipeline is rebuilt over the others. Without it, the first
     * drains rebuilt (and re-quantized, and saved to the quantization store) a pipeline over workers that were
     * themselves about to stop. Answered once it holds.
     */
    public record StopPlacing(ActorRef<PlacingStopped> replyTo) implements Command {
    }

    public record PlacingStopped() {
    }

    /** @param stageIndex the stage the worker held and that was moved, -1 when it held none */
    public record WorkerDrained(String workerId, int stageIndex) implements ClusterMessage {
    }

    /** Asks every stage for its counters (links, caches, compute); the answer comes from a short-lived aggregator. */
    public record CollectStats(ActorRef<StatsAggregator.PipelineStats> replyTo) implements Command {
    }

    record StepDeadline(long batchId) implements Command {
    }

    /** Time to fail the requests that waited longer than pending-timeout while no pipeline serves. */
    private record PendingCheck() implements Command {
    }

    private static final String PENDING_CHECK_TIMER = "pending-check";

    /** Time to fail the jobs whose deadline passed (request-deadline) and free their sequences. */
    private record DeadlineCheck() implements Command {
    }

    record LinkRangesArrived(StageWorker.LinkRanges ranges) implements Command {
    }

    record CalibrationChunkArrived(StatsChunk chunk) implements Command {
    }

    /** Forwards a fault to one stage's worker (chaos drills and tests; the worker must allow it). */
    public record InjectFault(int stageIndex, String kind) implements Command {
    }

    public record StageView(int stage, String workerId, String host, String device, int firstLayer, int endLayer,
                            long weightBytes, boolean ready) implements ClusterMessage {
    }

    /**
     * @param phase        gathering, loading, quantizing, calibrating (links), serving or failed
     * @param quantization the recipe the stages serve and how they got it ("fp32", "w8a8-smoothquant calibrated",
     *                     "w8a8-smoothquant restored from the store")
     * @param phases       every phase entered since the coordinator started, in order
     * @param replayed     sequences sent back to the queue to be replayed since the coordinator started (a lost or
     *                     drained stage worker's); how a chaos run tells that a kill hit running sequences
     * @param incarnation  this coordinator's id, new at each start: a gateway that sees it change knows the singleton
     *                     was handed over, and resumes its jobs on the new one
     * @param resumed      jobs taken over from a lost coordinator ({@link Resume}) since this one started
     * @param node         the cluster address of the node this coordinator runs on (host:port)
     */
    public record Status(Phase phase, int workers, StageView[] stages, String[] linkCodecs, int waiting, int active,
                         int inFlight, String error, String quantization, Phase[] phases, long replayed,
                         String incarnation, long resumed, String node)
            implements ClusterMessage {
        public boolean serving() {
            return phase == Phase.SERVING;
        }

        public boolean failed() {
            return phase == Phase.FAILED;
        }
    }

    public static Behavior<Command> create(CoordinatorSettings settings) {
        return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
            ActorRef<Receptionist.Listing> listings = context.messageAdapter(Receptionist.Listing.class,
                    listing -> new WorkersChanged(listing.getServiceInstances(StageWorker.KEY)));
            context.getSystem().receptionist().tell(Receptionist.subscribe(StageWorker.KEY, listings));
            timers.startTimerWithFixedDelay(new DeadlineCheck(), settings.admission().checkInterval());
            return new Coordinator(context, timers, settings).gathering();
        }));
    }

    private final ActorContext<Command> context;
    /** New at each start ({@link Status#incarnation()}). */
    private final String incarnation = java.util.UUID.randomUUID().toString();
    private final TimerScheduler<Command> timers;
    private final CoordinatorSettings settings;
    private final OptConfig model;
    /**
     * The links of the pipeline loading or serving. Each pipeline placed gets stream ids of its own (stream-base +
     * {@link #STREAMS_PER_PIPELINE} x the pipelines placed before it): a survivor's old stage may still publish for a
     * moment after a rebuild, and on a shared stream its frames reached the new stage that subscribed to it (a replay
     * then collided with the old pipeline's copy of the same sequence).
     */
    private LinkChannels channels;
    private int pipelinesPlaced;
    /** The placement whose stages load or serve now (the value of pipelinesPlaced when it was made). */
    private int placement;
    /** More than any pipeline has links (a stage holds at least one layer; OPT-175B has 96). */
    static final int STREAMS_PER_PIPELINE = 1000;
    /** Where workers answer: the adapter that wraps each {@link StageWorker.Reply} in a {@link WorkerReplied}. */
    private final ActorRef<StageWorker.Reply> replies;
    private final Map<ActorRef<StageWorker.Command>, WorkerDescription> described = new LinkedHashMap<>();
    private final Set<ActorRef<StageWorker.Command>> known = new HashSet<>();
    /** Workers that asked to be drained and are still in the receptionist's listing: never placed again. */
    private final Set<ActorRef<StageWorker.Command>> draining = new HashSet<>();
    /** One for the coordinator's life: sequence and batch ids are never reused, not even by a rebuilt pipeline. */
    private final Scheduler<ActorRef<JobEvent>> scheduler;
    private List<Stage> pipeline = List.of();
    /** {@link StopPlacing} came: drains and losses only take workers out. */
    private boolean stopping;
    /** The workers of the last pipeline placed, in stage order: a rebuilt one keeps the survivors at their stages. */
    private List<WorkerDescription> placed = List.of();
    /** Why and since when no pipeline serves; null while one does. */
    private PipelineOutage outage;
    private String error;
    /** Null for FP32: nothing to calibrate, restore or save. */
    private final QuantizationStore store;
    private String quantization = "fp32";
    private final List<Phase> phases = new ArrayList<>();
    private final PhaseHost host = new PhaseHost() {
        @Override
        public Behavior<Command> phase(Phase name, BehaviorBuilder<Command> handlers) {
            enter(name);
            return common(handlers, name);
        }

        @Override
        public Behavior<Command> fail(String reason) {
            return Coordinator.this.fail(reason);
        }

        @Override
        public ActorRef<StageWorker.Reply> replies() {
            return replies;
        }
    };
    /** Workers that describe themselves while a pipeline runs or starts: standbys for a rebuild. */
    private final ReplyRoutes lateWorkers = ReplyRoutes.of(StageWorker.WorkerDescribed.class, this::rememberLateWorker);
    /** Workers that describe themselves while the coordinator waits for enough of them. */
    private final ReplyRoutes newWorkers = ReplyRoutes.of(StageWorker.WorkerDescribed.class, this::onWorkerDescribed);

    private static final class Stage {
        final StagePlan plan;
        final WorkerDescription worker;
        boolean ready;
        boolean restored;
        long kvTokens;

        Stage(StagePlan plan, WorkerDescription worker) {
            this.plan = plan;
            this.worker = worker;
        }
    }

    private Coordinator(ActorContext<Command> context, TimerScheduler<Command> timers, CoordinatorSettings settings) {
        this.context = context;
        this.timers = timers;
        this.settings = settings;
        this.model = OptConfig.read(Path.of(settings.checkpointDir()).resolve("config.json"));
        this.replies = context.messageAdapter(StageWorker.Reply.class, WorkerReplied::new);
        this.scheduler = new Scheduler<>(settings.scheduler(), model.eosTokenId());
        QuantizationSettings q = settings.quantization();
        this.store = q.quantizes() ? new QuantizationStore(q, settings.checkpointDir(), ModelFingerprint.of(Path.of(settings.checkpointDir())))
                : null;
        context.getLog().info("coordinator {} up: {} ({} layers), waiting for {} worker(s), {} links, recipe {}", incarnation,
                settings.checkpointDir(), model.numLayers(), settings.expectedWorkers(), settings.linkCodec(), q.recipe().name());
        pipelineDown("the pipeline is starting");
    }

    private void enter(Phase phase) {
        if (phases.isEmpty() || phases.getLast() != phase) {
            phases.add(phase);
        }
    }

    /** The handlers every start-up phase shares, after the phase's own. */
    private Behavior<Command> common(BehaviorBuilder<Command> handlers, Phase phase) {
        return handlers
                .onMessage(WorkersChanged.class, this::onWorkersChangedWhileRunning)
                .onMessage(WorkerReplied.class, lateWorkers::handles, lateWorkers::route)
                .onMessage(DrainWorker.class, this::drain)
                .onMessage(StopPlacing.class, this::stopPlacing)
                .onMessage(Submit.class, this::queue)
                .onMessage(Resume.class, this::resume)
                .onMessage(Cancel.class, this::cancel)
                .onMessage(PendingCheck.class, this::expirePending)
                .onMessage(DeadlineCheck.class, this::expireDeadlines)
                .onMessage(GetStatus.class, m -> reply(m, phase))
                .onAnyMessage(this::ignore)
                .build();
    }

    // ---- phases -------------------------------------------------------------------------------------------

    private Behavior<Command> gathering() {
        enter(Phase.GATHERING);
        return Behaviors.receive(Command.class)
                .onMessage(WorkersChanged.class, this::onWorkersChanged)
                .onMessage(WorkerReplied.class, newWorkers::handles, newWorkers::route)
                .onMessage(DrainWorker.class, this::drain)
                .onMessage(StopPlacing.class, this::stopPlacing)
                .onMessage(Submit.class, this::queue)
                .onMessage(Resume.class, this::resume)
                .onMessage(Cancel.class, this::cancel)
                .onMessage(PendingCheck.class, this::expirePending)
                .onMessage(DeadlineCheck.class, this::expireDeadlines)
                .onMessage(GetStatus.class, m -> reply(m, Phase.GATHERING))
                .onAnyMessage(this::ignore)
                .build();
    }

    private Behavior<Command> loading() {
        ReplyRoutes loads = ReplyRoutes.of(StageWorker.StageReady.class, this::onStageReady)
                .and(StageWorker.StageFailed.class, this::onStageFailed);
        return host.phase(Phase.LOADING, Behaviors.receive(Command.class)
                .onMessage(WorkerReplied.class, loads::handles, loads::route));
    }

    private Behavior<Command> serving() {
        enter(Phase.SERVING);
        ReplyRoutes steps = ReplyRoutes.of(StageWorker.StepCompleted.class, this::onStepCompleted)
                .and(StageWorker.SequencesLeft.class, this::onSequencesLeft)
                .and(StageWorker.StepFailed.class, this::onStepFailed);
        return Behaviors.receive(Command.class)
                .onMessage(Submit.class, m -> {
                    queue(m);
                    dispatch();
                    return Behaviors.same();
                })
                .onMessage(Resume.class, m -> {
                    resume(m);
                    dispatch();
                    return Behaviors.same();
                })
                .onMessage(Cancel.class, m -> {
                    cancel(m);
                    dispatch();
                    return Behaviors.same();
                })
                .onMessage(WorkerReplied.class, steps::handles, steps::route)
                .onMessage(StepDeadline.class, this::onStepDeadline)
                .onMessage(DeadlineCheck.class, m -> {
                    expireDeadlines(m);
                    dispatch();
                    return Behaviors.same();
                })
                .onMessage(WorkersChanged.class, this::onWorkersChangedWhileRunning)
                .onMessage(WorkerReplied.class, lateWorkers::handles, lateWorkers::route)
                .onMessage(DrainWorker.class, this::drain)
                .onMessage(StopPlacing.class, this::stopPlacing)
                .onMessage(GetStatus.class, m -> reply(m, Phase.SERVING))
                .onMessage(CollectStats.class, this::collectStats)
                .onMessage(InjectFault.class, m -> {
                    if (m.stageIndex() >= 0 && m.stageIndex() < pipeline.size()) {
                        pipeline.get(m.stageIndex()).worker.worker().tell(new StageWorker.InjectFault(m.kind()));
                    }
                    return Behaviors.same();
                })
                .onAnyMessage(this::ignore)
                .build();
    }

    private Behavior<Command> failed() {
        enter(Phase.FAILED);
        return Behaviors.receive(Command.class)
                .onMessage(Submit.class, m -> {
                    m.replyTo().tell(new JobEvent.JobFailed(m.job().requestId(), "the pipeline is down: " + error));
                    return Behaviors.same();
                })
                .onMessage(Resume.class, m -> {
                    m.replyTo().tell(new JobEvent.JobFailed(m.job().requestId(), "the pipeline is down: " + error));
                    return Behaviors.same();
                })
                .onMessage(WorkersChanged.class, this::onWorkersChanged)
                .onMessage(WorkerReplied.class, newWorkers::handles, newWorkers::route)
                .onMessage(DrainWorker.class, this::drain)
                .onMessage(StopPlacing.class, this::stopPlacing)
                .onMessage(GetStatus.class, m -> reply(m, Phase.FAILED))
                .onAnyMessage(this::ignore)
                .build();
    }

    // ---- gathering and placement --------------------------------------------------------------------------

    private Behavior<Command> onWorkersChanged(WorkersChanged message) {
        for (ActorRef<StageWorker.Command> worker : message.workers()) {
            if (known.add(worker)) {
                worker.tell(new StageWorker.Describe(replies));
            }
        }
        known.retainAll(message.workers());
        described.keySet().retainAll(message.workers());
        draining.retainAll(message.workers());
        return Behaviors.same();
    }

    private Behavior<Command> onWorkerDescribed(StageWorker.WorkerDescribed message) {
        WorkerDescription description = message.description();
        if (!known.contains(description.worker()) || draining.contains(description.worker())) {
            return Behaviors.same();
        }
        described.put(description.worker(), description);
        context.getLog().info("worker {} on {} ({}, {} MB) joined: {}/{}", description.workerId(), description.host(),
                description.device(), description.memoryBytes() >> 20, described.size(), settings.expectedWorkers());
        if (!placed.isEmpty()) {
            return rebuildOrWait(); // a lost pipeline's rebuild that waited for workers
        }
        if (described.size() < settings.expectedWorkers()) {
            return Behaviors.same();
        }
        return place(StageRoster.choose(placed, described.values(), settings.expectedWorkers()));
    }

    private Behavior<Command> rememberLateWorker(StageWorker.WorkerDescribed message) {
        if (known.contains(message.description().worker()) && !draining.contains(message.description().worker())) {
            described.put(message.description().worker(), message.description());
        }
        return Behaviors.same();
    }

    private Behavior<Command> place(List<WorkerDescription> workers) {
        List<StagePlan> plans;
        try {
            plans = plan(workers);
        } catch (IllegalArgumentException e) {
            return fail("placement failed: " + e.getMessage());
        }
        return load(workers, plans);
    }

    /** Layer ranges for {@code workers}, in stage order, by their memory. @throws IllegalArgumentException when they do not fit */
    private List<StagePlan> plan(List<WorkerDescription> workers) {
        return LayerPlacement.plan(model, workers.stream().map(WorkerDescription::memoryBytes).toList(),
                settings.bytesPerParameter(), settings.reserveFraction());
    }

    /**
     * After a loss: a pipeline over {@code expected-workers} again when standbys make them up, else over the survivors
     * when at least min-workers remain and the layers fit their memory; otherwise wait in gathering for workers.
     */
    private Behavior<Command> rebuildOrWait() {
        List<WorkerDescription> workers = StageRoster.choose(placed, described.values(), settings.expectedWorkers());
        if (workers.size() >= settings.expectedWorkers()) {
            return place(workers);
        }
        if (workers.size() >= settings.failover().minWorkers()) {
            try {
                List<StagePlan> plans = plan(workers);
                context.getLog().info("rebuilding the pipeline over the {} remaining worker(s), no standby to take the lost"
                        + " one's place", workers.size());
                return load(workers, plans);
            } catch (IllegalArgumentException e) {
                context.getLog().warn("the {} remaining worker(s) cannot hold the model ({}): waiting for workers to join",
                        workers.size(), e.getMessage());
                return gathering();
            }
        }
        context.getLog().warn("{} worker(s) remain, bitrelay.coordinator.min-workers is {}: waiting for workers to join",
                workers.size(), settings.failover().minWorkers());
        return gathering();
    }

    private Behavior<Command> load(List<WorkerDescription> workers, List<StagePlan> plans) {
        placed = List.copyOf(workers);
        skipStreamsInUse();
        channels = new LinkChannels(LinkChannels.Settings.defaults()
                .withStreamIdBase(settings.streamBase() + STREAMS_PER_PIPELINE * pipelinesPlaced++));
        placement = pipelinesPlaced;
        pipelineDown("the pipeline is loading"); // after a failure, or at start: requests wait for it, within limits
        List<Stage> stages = new ArrayList<>();
        for (StagePlan plan : plans) {
            stages.add(new Stage(plan, workers.get(plan.device())));
        }
        pipeline = List.copyOf(stages);
        int microBatches = settings.microBatchesPerStage()
                ? PipelineDevices.count(pipeline.stream().map(s -> s.worker).toList()) : settings.scheduler().microBatches();
        scheduler.reconfigure(settings.scheduler().withMicroBatches(microBatches), this::relay);
        StageQuantization[] quantizations = store == null ? new StageQuantization[pipeline.size()]
                : store.assignments(pipeline.stream().map(s -> new int[]{s.plan.firstLayer(), s.plan.endLayer()}).toList(),
                        org.slf4j.LoggerFactory.getLogger(QuantizationStore.class));
        // a new key per placement: frames of the pipeline this one replaces (or replayed from it) fail the tag, and
        // the frame counts that make the nonces start again under a key never used before (docs/security.md)
        LinkKey linkKey = settings.linkProtection() == LinkProtection.NONE ? null : LinkKey.random(settings.linkProtection());
        for (int i = 0; i < pipeline.size(); i++) {
            Stage stage = pipeline.get(i);
            Link inbound = i == 0 ? null
                    : link(i - 1, pipeline.get(i - 1).worker, stage.worker);
            Link outbound = i == pipeline.size() - 1 ? null
                    : link(i, stage.worker, pipeline.get(i + 1).worker);
            StageAssignment assignment = new StageAssignment(i, pipeline.size(), stage.plan.firstLayer(),
                    stage.plan.endLayer(), model.numLayers(), settings.checkpointDir(), settings.linkCodec(), inbound, outbound,
                    quantizations[i], settings.quantization().kvCache().optionName(), settings.scheduler().maxBatchTokens(),
                    linkKey);
            context.getLog().info("stage {}: layers [{}, {}) on {} ({}), {} MB of weights", i, stage.plan.firstLayer(),
                    stage.plan.endLayer(), stage.worker.workerId(), stage.worker.host(), stage.plan.weightBytes() >> 20);
            stage.worker.worker().tell(new StageWorker.LoadStage(assignment, replies, pipeline.getFirst().worker.worker(),
                    placement));
        }
        return loading();
    }

    /**
     * A coordinator that took over from a lost one finds workers holding the lost one's stages, which may still publish
     * for a moment: its pipelines start above every stream id a worker reports, as a rebuilt one does above its own.
     */
    private void skipStreamsInUse() {
        int highest = described.values().stream().mapToInt(WorkerDescription::streamsUpTo).max().orElse(0);
        int base = settings.streamBase() + STREAMS_PER_PIPELINE * pipelinesPlaced;
        if (highest >= base) {
            int skipped = (highest - settings.streamBase()) / STREAMS_PER_PIPELINE + 1 - pipelinesPlaced;
            pipelinesPlaced += skipped;
            // only after a coordinator was lost: worth seeing next to the hand-over's other lines
            context.getLog().warn("workers hold links up to stream {} (a lost coordinator's pipelines): this pipeline's"
                    + " streams start at {}", highest, settings.streamBase() + STREAMS_PER_PIPELINE * pipelinesPlaced);
        }
    }

    /** Aeron IPC between stages on one host (through its shared driver), UDP to the next worker's data port otherwise. */
    private Link link(int sourceStage, WorkerDescription from, WorkerDescription to) {
        return channels.link(sourceStage, from.host(), sourceStage + 1, to.host(), to.dataPort());
    }

    /** Whether a load answer is for the placement now loading; one for an earlier placement is logged and dropped. */
    private boolean current(int answered, int stageIndex, String what) {
        if (answered == placement && stageIndex >= 0 && stageIndex < pipeline.size()) {
            return true;
        }
        context.getLog().info("ignoring stage {} {} for placement {} (placement {} of {} stages loads now)", stageIndex, what,
                answered, placement, pipeline.size());
        return false;
    }

    private Behavior<Command> onStageReady(StageWorker.StageReady message) {
        if (!current(message.placement(), message.stageIndex(), "ready")) {
            return Behaviors.same();
        }
        Stage stage = pipeline.get(message.stageIndex());
        stage.ready = true;
        stage.restored = message.restored();
        stage.kvTokens = message.kvTokens();
        context.getLog().info("stage {} ready on {} ({} MB loaded in {} ms{})", message.stageIndex(), stage.worker.workerId(),
                message.weightBytes() >> 20, message.loadMillis(), message.restored() ? ", quantized layers restored" : "");
        if (message.restoreProblem() != null) {
            org.slf4j.LoggerFactory.getLogger(QuantizationStore.class).warn("stage {} cannot use its saved layers, calibrating again: {}",
                    message.stageIndex(), message.restoreProblem());
        }
        if (!pipeline.stream().allMatch(s -> s.ready)) {
            return Behaviors.same();
        }
        long kvTokens = pipeline.stream().mapToLong(s -> s.kvTokens).min().orElseThrow();
        try {
            scheduler.reconfigure(scheduler.settings().sizedFor(kvTokens, settings.autoBatchSequences()), this::relay);
        } catch (IllegalArgumentException e) {
            return fail(e.getMessage());
        }
        context.getLog().info("stages hold {} KV cache positions: {} active at most, {} per micro-batch, {} in flight",
                kvTokens == Long.MAX_VALUE ? "any number of" : kvTokens, scheduler.settings().maxActiveSequences(),
                scheduler.settings().maxBatchSequences(), scheduler.settings().microBatches());
        if (store == null) {
            return calibrateLinksOrServe();
        }
        String recipe = settings.quantization().recipe().name();
        if (pipeline.stream().allMatch(s -> s.restored)) {
            quantization = recipe + " restored from the store";
            org.slf4j.LoggerFactory.getLogger(QuantizationStore.class).info("every stage restored {} from the quantization store: no calibration", recipe);
            return calibrateLinksOrServe();
        }
        List<RecipeCalibration.StageRef> stages = pipeline.stream()
                .map(s -> new RecipeCalibration.StageRef(s.worker.worker(), s.plan.firstLayer(), s.plan.endLayer())).toList();
        return new RecipeCalibration(context, timers, settings, model, stages, store, host).start(() -> {
            quantization = recipe + " calibrated";
            return calibrateLinksOrServe();
        });
    }

    private Behavior<Command> calibrateLinksOrServe() {
        CodecId codec = CodecId.fromName(settings.linkCodec());
        if (pipeline.size() > 1 && (codec == CodecId.INT4_RPTQ || codec == CodecId.INT3_RPTQ)) {
            return new LinkCalibration(context, timers, settings, model, pipeline.stream().map(s -> s.worker.worker()).toList(), host)
                    .start(this::startServing);
        }
        return startServing();
    }

    Behavior<Command> startServing() {
        if (outage != null) {
            context.getLog().info("pipeline of {} stages serving, {} ms after: {}; {} request(s) waiting, replays first",
                    pipeline.size(), outage.millisSince(System.nanoTime()), outage.cause(), scheduler.waitingCount());
            outage = null;
            timers.cancel(PENDING_CHECK_TIMER);
        }
        dispatch();
        return serving();
    }

    private Behavior<Command> onStageFailed(StageWorker.StageFailed message) {
        if (!current(message.placement(), message.stageIndex(), "failed")) {
            return Behaviors.same();
        }
        return fail("stage " + message.stageIndex() + " failed to load: " + message.reason());
    }

    /**
     * A worker of the pipeline left (serving, or still starting): its running sequences go back to the queue for a
     * replay, nothing is freed on the lost pipeline (the rebuilt one loads afresh, and its late reports name batches
     * that are no longer resident), and the pipeline is rebuilt.
     */
    private Behavior<Command> onWorkersChangedWhileRunning(WorkersChanged message) {
        onWorkersChanged(message);
        List<String> lost = new ArrayList<>();
        for (int i = 0; i < pipeline.size(); i++) {
            if (!message.workers().contains(pipeline.get(i).worker.worker())) {
                lost.add("worker " + pipeline.get(i).worker.workerId() + " (stage " + i + ")");
            }
        }
        if (lost.isEmpty()) {
            return Behaviors.same();
        }
        return rebuildWithout(String.join(", ", lost) + " left the cluster");
    }

    /**
     * A worker of the pipeline stops (SIGTERM): taken out now, its stage is moved as after a loss, and it is told when
     * it may go. A worker that holds no stage (a standby) is only forgotten.
     */
    private Behavior<Command> drain(DrainWorker message) {
        draining.add(message.worker());
        described.remove(message.worker());
        int stage = -1;
        for (int i = 0; i < pipeline.size(); i++) {
            if (pipeline.get(i).worker.worker().equals(message.worker())) {
                stage = i;
            }
        }
        Behavior<Command> next = Behaviors.same();
        if (stage >= 0) {
            next = rebuildWithout("worker " + message.workerId() + " (stage " + stage + ") is draining (stopping)");
        } else {
            context.getLog().info("worker {} is draining (stopping); it holds no stage", message.workerId());
        }
        message.replyTo().tell(new WorkerDrained(message.workerId(), stage));
        return next;
    }

    private Behavior<Command> stopPlacing(StopPlacing message) {
        stopping = true;
        context.getLog().info("the cluster is stopping: workers that drain or leave are taken out, nothing is rebuilt");
        message.replyTo().tell(new PlacingStopped());
        return Behaviors.same();
    }

    /** The pipeline's sequences go back to the queue for a replay, and the pipeline is rebuilt over who is left. */
    private Behavior<Command> rebuildWithout(String cause) {
        if (stopping) {
            context.getLog().info("{}: the cluster is stopping, no pipeline is rebuilt", cause);
            pipeline = List.of();
            return Behaviors.same();
        }
        int running = scheduler.activeCount();
        for (long batchId : scheduler.requeueForReplay(this::relay)) {
            timers.cancel(batchId);
        }
        context.getLog().warn("{}: {} running sequence(s) wait to be replayed, {} in the queue; rebuilding the pipeline",
                cause, running, scheduler.waitingCount());
        pipeline = List.of();
        pipelineDown(cause);
        return rebuildOrWait();
    }

    /** No pipeline serves from now on: requests wait at most pending-timeout, counted from now at the earliest. */
    private void pipelineDown(String cause) {
        if (outage == null) {
            outage = new PipelineOutage(cause, System.nanoTime());
        }
        timers.startTimerWithFixedDelay(PENDING_CHECK_TIMER, new PendingCheck(), settings.failover().checkInterval());
    }

    private Behavior<Command> expirePending(PendingCheck message) {
        if (outage == null) {
            return Behaviors.same();
        }
        java.time.Duration timeout = settings.failover().pendingTimeout();
        outage.expiredQueuedBy(System.nanoTime(), timeout).ifPresent(queuedBy -> {
            String reason = "no pipeline could serve the request within " + timeout.toMillis() / 1000.0 + " s ("
                    + FailoverSettings.PENDING_TIMEOUT_KEY + "): " + outage.cause() + " (the pipeline is "
                    + phases.getLast().label() + " now)";
            int expired = scheduler.expireWaiting(queuedBy, reason, this::relay);
            if (expired > 0) {
                context.getLog().warn("{} request(s) failed: {}", expired, reason);
            }
        });
        return Behaviors.same();
    }

    private Behavior<Command> fail(String reason) {
        error = reason;
        context.getLog().error(reason);
        timers.cancel(PENDING_CHECK_TIMER);
        scheduler.failAll(reason, this::relay);
        return failed();
    }

    // ---- scheduling -----------------------------------------------------------------------------------------

    /**
     * Queues a job, or refuses it at once when max-waiting jobs already wait: a queue without a bound kept requests
     * long after their clients gave up (issue 16), and a refusal lets the client retry elsewhere or later.
     */
    private Behavior<Command> queue(Submit message) {
        String requestId = message.job().requestId();
        AdmissionSettings admission = settings.admission();
        int waiting = scheduler.waitingCount();
        if (waiting >= admission.maxWaiting()) {
            message.replyTo().tell(new JobEvent.JobFailed(requestId, waiting + " requests are already waiting in the"
                    + " coordinator's queue (limit " + admission.maxWaiting() + ", " + AdmissionSettings.MAX_WAITING_KEY
                    + "); retry later", FailureKind.OVERLOADED));
            return Behaviors.same();
        }
        try {
            scheduler.submit(message.job(), message.replyTo(), admission.deadlineFor(message.deadlineMillis()));
        } catch (IllegalArgumentException e) {
            message.replyTo().tell(new JobEvent.JobFailed(requestId, e.getMessage()));
            return Behaviors.same();
        }
        message.replyTo().tell(new JobEvent.JobQueued(requestId));
        return Behaviors.same();
    }

    /**
     * Takes over a job of a lost coordinator. Not refused for a full queue (max-waiting): its client was admitted
     * before and has tokens already; the queue's bound is for new requests.
     */
    private Behavior<Command> resume(Resume message) {
        String requestId = message.job().requestId();
        if (scheduler.holds(requestId)) {
            context.getLog().debug("request {} is already here (its submission reached this coordinator): not resumed", requestId);
            return Behaviors.same();
        }
        try {
            scheduler.resume(message.job(), message.tokensSoFar(), message.promptScoresDelivered(), message.replyTo(),
                    settings.admission().deadlineFor(message.deadlineMillis()));
        } catch (IllegalArgumentException e) {
            message.replyTo().tell(new JobEvent.JobFailed(requestId, e.getMessage()));
            return Behaviors.same();
        }
        // the gateway logs one line for all it resumes
        context.getLog().debug("request {} resumed after {} token(s) from a lost coordinator", requestId,
                message.tokensSoFar().length);
        return Behaviors.same();
    }

    private Behavior<Command> cancel(Cancel message) {
        apply(scheduler.cancel(message.requestId(), this::relay));
        return Behaviors.same();
    }

    private Behavior<Command> expireDeadlines(DeadlineCheck message) {
        List<Scheduler.Cancellation> expired = scheduler.expireDeadlines(AdmissionSettings.REQUEST_DEADLINE_KEY, this::relay);
        if (!expired.isEmpty()) {
            context.getLog().warn("{} request(s) failed: past their deadline ({} = {})", expired.size(),
                    AdmissionSettings.REQUEST_DEADLINE_KEY, settings.admission().requestDeadline());
        }
        expired.forEach(this::apply);
        return Behaviors.same();
    }

    /** Frees a cancelled sequence's caches now, or has the first stage take it out of its batch. */
    private void apply(Scheduler.Cancellation cancellation) {
        if (cancellation.closeNow() >= 0) {
            closeSequences(List.of(cancellation.closeNow()));
        } else if (cancellation.leaveBatch() != 0 && !pipeline.isEmpty()) {
            pipeline.getFirst().worker.worker().tell(new StageWorker.LeaveBatch(cancellation.leaveBatch(),
                    new int[]{cancellation.leaveSequence()}));
        }
    }

    /** Sends what joins the resident batches to the first stage; a batch's deadline runs from its first join or last report. */
    private void dispatch() {
        if (pipeline.isEmpty()) {
            return;
        }
        ActorRef<StageWorker.Command> first = pipeline.getFirst().worker.worker();
        for (MicroBatch batch : scheduler.dispatch()) {
            first.tell(new StageWorker.RunStep(batch));
            if (!timers.isTimerActive(batch.batchId())) {
                timers.startSingleTimer(batch.batchId(), new StepDeadline(batch.batchId()), settings.stepTimeout());
            }
        }
    }

    private Behavior<Command> onStepCompleted(StageWorker.StepCompleted message) {
        try {
            closeSequences(scheduler.complete(message.batchId(), message.sequenceIds(), message.tokens(), message.scores(),
                    this::relay));
        } catch (IllegalArgumentException e) {
            context.getLog().warn("ignoring step result: {}", e.getMessage());
        }
        rearmDeadline(message.batchId());
        dispatch();
        return Behaviors.same();
    }

    private Behavior<Command> onSequencesLeft(StageWorker.SequencesLeft message) {
        closeSequences(scheduler.left(message.batchId(), message.sequenceIds(), this::relay));
        rearmDeadline(message.batchId());
        dispatch();
        return Behaviors.same();
    }

    /** A resident batch must report again within the step timeout; one that emptied needs no deadline. */
    private void rearmDeadline(long batchId) {
        if (scheduler.isInFlight(batchId)) {
            timers.startSingleTimer(batchId, new StepDeadline(batchId), settings.stepTimeout());
        } else {
            timers.cancel(batchId);
        }
    }

    /** The batch's members failed: the first stage forgets it, so nothing joins or loops on a broken batch. */
    private void failBatch(long batchId, String reason) {
        timers.cancel(batchId);
        closeSequences(scheduler.fail(batchId, reason, this::relay));
        if (!pipeline.isEmpty()) {
            pipeline.getFirst().worker.worker().tell(new StageWorker.DropBatch(batchId));
        }
        dispatch();
    }

    private Behavior<Command> onStepFailed(StageWorker.StepFailed message) {
        if (!scheduler.isInFlight(message.batchId())) {
            // A foreign or mangled frame: its header names no micro-batch of ours, so no request is at fault.
            context.getLog().warn("stage {} rejected a frame of no micro-batch in flight: {}", message.stageIndex(), message.reason());
            return Behaviors.same();
        }
        context.getLog().warn("micro-batch {} failed at stage {}: {}", message.batchId(), message.stageIndex(), message.reason());
        failBatch(message.batchId(), "stage " + message.stageIndex() + ": " + message.reason());
        return Behaviors.same();
    }

    private Behavior<Command> onStepDeadline(StepDeadline message) {
        if (scheduler.isInFlight(message.batchId())) {
            String reason = "micro-batch " + message.batchId() + " did not come back within " + settings.stepTimeout();
            context.getLog().warn(reason);
            failBatch(message.batchId(), reason);
        }
        return Behaviors.same();
    }

    private void closeSequences(List<Integer> sequenceIds) {
        if (sequenceIds.isEmpty()) {
            return;
        }
        int[] ids = sequenceIds.stream().mapToInt(Integer::intValue).toArray();
        for (Stage stage : pipeline) {
            stage.worker.worker().tell(new StageWorker.CloseSequences(ids));
        }
    }

    private void relay(Scheduler.Event<ActorRef<JobEvent>> event) {
        switch (event) {
            case Scheduler.Token<ActorRef<JobEvent>> t -> t.client().tell(new JobEvent.TokenGenerated(t.requestId(), t.token(), t.score()));
            case Scheduler.PromptScores<ActorRef<JobEvent>> p -> p.client().tell(new JobEvent.PromptScored(p.requestId(), p.scores()));
            case Scheduler.Finished<ActorRef<JobEvent>> f -> f.client().tell(new JobEvent.JobFinished(f.requestId(), f.reason()));
            case Scheduler.Failed<ActorRef<JobEvent>> f ->
                    f.client().tell(new JobEvent.JobFailed(f.requestId(), f.reason(), f.kind()));
        }
    }

    private Behavior<Command> reply(GetStatus message, Phase phase) {
        StageView[] stages = pipeline.stream().map(s -> new StageView(pipeline.indexOf(s), s.worker.workerId(), s.worker.host(),
                s.worker.device(), s.plan.firstLayer(), s.plan.endLayer(), s.plan.weightBytes(), s.ready)).toArray(StageView[]::new);
        String[] codecs = new String[Math.max(0, pipeline.size() - 1)];
        java.util.Arrays.fill(codecs, settings.linkCodec());
        message.replyTo().tell(new Status(phase, described.size(), stages, codecs, scheduler.waitingCount(),
                scheduler.activeCount(), scheduler.inFlightCount(), error, describeQuantization(), phases.toArray(Phase[]::new),
                scheduler.replayedCount(), incarnation, scheduler.resumedCount(), nodeAddress()));
        return Behaviors.same();
    }

    private String nodeAddress() {
        org.apache.pekko.actor.Address self = org.apache.pekko.cluster.typed.Cluster.get(context.getSystem()).selfMember().address();
        return self.getHost().orElse("?") + ":" + self.getPort().map(String::valueOf).orElse("?");
    }

    /** The recipe and how the stages got it, with the KV cache's precision when it is quantized. */
    private String describeQuantization() {
        var kv = settings.quantization().kvCache();
        return kv.quantized() ? quantization + ", KV cache " + kv.optionName() : quantization;
    }

    private Behavior<Command> collectStats(CollectStats message) {
        List<ActorRef<StageWorker.Command>> stages = pipeline.stream().map(s -> s.worker.worker()).toList();
        context.spawnAnonymous(StatsAggregator.create(stages, scheduler.firstTokenTimes(), message.replyTo(),
                java.time.Duration.ofSeconds(10)));
        return Behaviors.same();
    }

    private Behavior<Command> ignore(Command message) {
        Object ignored = message instanceof WorkerReplied replied ? replied.reply() : message;
        context.getLog().debug("ignoring {} in this phase", ignored.getClass().getSimpleName());
        return Behaviors.same();
    }
}
