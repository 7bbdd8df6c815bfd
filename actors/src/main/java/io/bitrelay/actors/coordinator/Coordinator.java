package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.dataplane.LinkChannels;
import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.actors.gateway.GenerationJob;
import io.bitrelay.actors.dataplane.Link;
import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.actors.pipeline.WorkerDescription;
import io.bitrelay.actors.serialization.ClusterMessage;
import io.bitrelay.actors.worker.StageWorker;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.placement.LayerPlacement;
import io.bitrelay.runtime.placement.StagePlan;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The cluster singleton that owns the pipeline: it waits for the workers, places contiguous layer ranges
 * on them by memory, tells each what to load and where its links go, then schedules requests with
 * continuous batching, pushing micro-batches through the stages so that all of them work at once.
 */
public final class Coordinator {
    public static final String SINGLETON_NAME = "bitrelay-coordinator";
    public static final String ROLE = "coordinator";

    public sealed interface Command extends ClusterMessage {
    }

    /** The receptionist's current set of workers (local only). */
    public record WorkersChanged(Set<ActorRef<StageWorker.Command>> workers) implements Command {
    }

    public record WorkerDescribed(WorkerDescription description) implements Command {
    }

    public record StageReady(int stageIndex, long weightBytes, long loadMillis) implements Command {
    }

    public record StageFailed(int stageIndex, String reason) implements Command {
    }

    public record Submit(GenerationJob job, ActorRef<JobEvent> replyTo) implements Command {
    }

    public record Cancel(String requestId) implements Command {
    }

    /** The last stage sampled one token for each sequence of the micro-batch. */
    public record StepCompleted(long batchId, int[] sequenceIds, int[] tokens) implements Command {
    }

    /** A stage could not run a micro-batch (a rejected frame, a failed kernel, a lost cache). */
    public record StepFailed(long batchId, int stageIndex, String reason) implements Command {
    }

    public record GetStatus(ActorRef<Status> replyTo) implements Command {
    }

    /** Asks every stage for its counters (links, caches, compute); the answer comes from a short-lived aggregator. */
    public record CollectStats(ActorRef<StatsAggregator.PipelineStats> replyTo) implements Command {
    }

    private record StepDeadline(long batchId) implements Command {
    }

    /** The last stage finished a calibration micro-batch. */
    public record CalibrationStepDone(long batchId) implements Command {
    }

    /** A stage switched one of its links to the RPTQ plan it was sent. */
    public record LinkPlanApplied(int stageIndex, boolean outbound) implements Command {
    }

    private record LinkRangesArrived(StageWorker.LinkRanges ranges) implements Command {
    }

    /** Forwards a fault to one stage's worker (chaos drills and tests; the worker must allow it). */
    public record InjectFault(int stageIndex, String kind) implements Command {
    }

    public record StageView(int stage, String workerId, String host, String device, int firstLayer, int endLayer,
                            long weightBytes, boolean ready) implements ClusterMessage {
    }

    /** @param phase gathering, loading, serving or failed */
    public record Status(String phase, int workers, StageView[] stages, String[] linkCodecs, int waiting, int active,
                         int inFlight, String error) implements ClusterMessage {
        public boolean serving() {
            return phase.equals("serving");
        }
    }

    public static Behavior<Command> create(CoordinatorSettings settings) {
        return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
            ActorRef<Receptionist.Listing> listings = context.messageAdapter(Receptionist.Listing.class,
                    listing -> new WorkersChanged(listing.getServiceInstances(StageWorker.KEY)));
            context.getSystem().receptionist().tell(Receptionist.subscribe(StageWorker.KEY, listings));
            return new Coordinator(context, timers, settings).gathering();
        }));
    }

    private final ActorContext<Command> context;
    private final TimerScheduler<Command> timers;
    private final CoordinatorSettings settings;
    private final OptConfig model;
    private final LinkChannels channels;
    private final Map<ActorRef<StageWorker.Command>, WorkerDescription> described = new LinkedHashMap<>();
    private final Set<ActorRef<StageWorker.Command>> known = new HashSet<>();
    private Scheduler<ActorRef<JobEvent>> scheduler;
    private List<Stage> pipeline = List.of();
    private String error;

    private static final class Stage {
        final StagePlan plan;
        final WorkerDescription worker;
        boolean ready;

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
        this.channels = new LinkChannels(LinkChannels.Settings.defaults().withStreamIdBase(settings.streamBase()));
        this.scheduler = new Scheduler<>(settings.scheduler(), model.eosTokenId());
        context.getLog().info("coordinator up: {} ({} layers), waiting for {} worker(s), {} links",
                settings.checkpointDir(), model.numLayers(), settings.expectedWorkers(), settings.linkCodec());
    }

    // ---- phases -------------------------------------------------------------------------------------------

    private Behavior<Command> gathering() {
        return Behaviors.receive(Command.class)
                .onMessage(WorkersChanged.class, this::onWorkersChanged)
                .onMessage(WorkerDescribed.class, this::onWorkerDescribed)
                .onMessage(Submit.class, this::queue)
                .onMessage(Cancel.class, this::cancel)
                .onMessage(GetStatus.class, m -> reply(m, "gathering"))
                .onAnyMessage(this::ignore)
                .build();
    }

    private Behavior<Command> loading() {
        return Behaviors.receive(Command.class)
                .onMessage(StageReady.class, this::onStageReady)
                .onMessage(StageFailed.class, this::onStageFailed)
                .onMessage(WorkersChanged.class, this::onWorkersChangedWhileRunning)
                .onMessage(WorkerDescribed.class, this::rememberLateWorker)
                .onMessage(Submit.class, this::queue)
                .onMessage(Cancel.class, this::cancel)
                .onMessage(GetStatus.class, m -> reply(m, "loading"))
                .onAnyMessage(this::ignore)
                .build();
    }

    private Behavior<Command> serving() {
        return Behaviors.receive(Command.class)
                .onMessage(Submit.class, m -> {
                    queue(m);
                    dispatch();
                    return Behaviors.same();
                })
                .onMessage(Cancel.class, m -> {
                    cancel(m);
                    dispatch();
                    return Behaviors.same();
                })
                .onMessage(StepCompleted.class, this::onStepCompleted)
                .onMessage(StepFailed.class, this::onStepFailed)
                .onMessage(StepDeadline.class, this::onStepDeadline)
                .onMessage(WorkersChanged.class, this::onWorkersChangedWhileRunning)
                .onMessage(WorkerDescribed.class, this::rememberLateWorker)
                .onMessage(GetStatus.class, m -> reply(m, "serving"))
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
        return Behaviors.receive(Command.class)
                .onMessage(Submit.class, m -> {
                    m.replyTo().tell(new JobEvent.JobFailed(m.job().requestId(), "the pipeline is down: " + error));
                    return Behaviors.same();
                })
                .onMessage(WorkersChanged.class, this::onWorkersChanged)
                .onMessage(WorkerDescribed.class, this::onWorkerDescribed)
                .onMessage(GetStatus.class, m -> reply(m, "failed"))
                .onAnyMessage(this::ignore)
                .build();
    }

    // ---- gathering and placement --------------------------------------------------------------------------

    private Behavior<Command> onWorkersChanged(WorkersChanged message) {
        for (ActorRef<StageWorker.Command> worker : message.workers()) {
            if (known.add(worker)) {
                worker.tell(new StageWorker.Describe(context.getSelf()));
            }
        }
        known.retainAll(message.workers());
        described.keySet().retainAll(message.workers());
        return Behaviors.same();
    }

    private Behavior<Command> onWorkerDescribed(WorkerDescribed message) {
        WorkerDescription description = message.description();
        if (!known.contains(description.worker())) {
            return Behaviors.same();
        }
        described.put(description.worker(), description);
        context.getLog().info("worker {} on {} ({}, {} MB) joined: {}/{}", description.workerId(), description.host(),
                description.device(), description.memoryBytes() >> 20, described.size(), settings.expectedWorkers());
        if (described.size() < settings.expectedWorkers()) {
            return Behaviors.same();
        }
        return place();
    }

    private Behavior<Command> rememberLateWorker(WorkerDescribed message) {
        if (known.contains(message.description().worker())) {
            described.put(message.description().worker(), message.description());
        }
        return Behaviors.same();
    }

    private Behavior<Command> place() {
        List<WorkerDescription> workers = new ArrayList<>(described.values());
        workers.sort(Comparator.comparing(WorkerDescription::host).thenComparing(WorkerDescription::workerId));
        List<StagePlan> plans;
        try {
            plans = LayerPlacement.plan(model, workers.stream().map(WorkerDescription::memoryBytes).toList(),
                    settings.bytesPerParameter(), settings.reserveFraction());
        } catch (IllegalArgumentException e) {
            return fail("placement failed: " + e.getMessage());
        }
        List<Stage> stages = new ArrayList<>();
        for (StagePlan plan : plans) {
            stages.add(new Stage(plan, workers.get(plan.device())));
        }
        pipeline = List.copyOf(stages);
        int microBatches = settings.microBatchesPerStage() ? pipeline.size() : settings.scheduler().microBatches();
        scheduler = rebuildScheduler(settings.scheduler().withMicroBatches(microBatches));
        for (int i = 0; i < pipeline.size(); i++) {
            Stage stage = pipeline.get(i);
            Link inbound = i == 0 ? null
                    : link(i - 1, pipeline.get(i - 1).worker, stage.worker);
            Link outbound = i == pipeline.size() - 1 ? null
                    : link(i, stage.worker, pipeline.get(i + 1).worker);
            StageAssignment assignment = new StageAssignment(i, pipeline.size(), stage.plan.firstLayer(),
                    stage.plan.endLayer(), model.numLayers(), settings.checkpointDir(), settings.linkCodec(), inbound, outbound);
            context.getLog().info("stage {}: layers [{}, {}) on {} ({}), {} MB of weights", i, stage.plan.firstLayer(),
                    stage.plan.endLayer(), stage.worker.workerId(), stage.worker.host(), stage.plan.weightBytes() >> 20);
            stage.worker.worker().tell(new StageWorker.LoadStage(assignment, context.getSelf()));
        }
        return loading();
    }

    /** Aeron IPC between stages on one host (through its shared driver), UDP to the next worker's data port otherwise. */
    private Link link(int sourceStage, WorkerDescription from, WorkerDescription to) {
        return channels.link(sourceStage, from.host(), sourceStage + 1, to.host(), to.dataPort());
    }

    /** Keeps the jobs already queued when the pipeline is (re)built. */
    private Scheduler<ActorRef<JobEvent>> rebuildScheduler(SchedulerSettings schedulerSettings) {
        Scheduler<ActorRef<JobEvent>> fresh = new Scheduler<>(schedulerSettings, model.eosTokenId());
        if (scheduler != null && (scheduler.activeCount() > 0 || scheduler.inFlightCount() > 0)) {
            scheduler.failAll("the pipeline was rebuilt", this::relay);
        } else if (scheduler != null) {
            scheduler.drainWaiting(fresh::submit);
        }
        return fresh;
    }

    private Behavior<Command> onStageReady(StageReady message) {
        Stage stage = pipeline.get(message.stageIndex());
        stage.ready = true;
        context.getLog().info("stage {} ready on {} ({} MB loaded in {} ms)", message.stageIndex(), stage.worker.workerId(),
                message.weightBytes() >> 20, message.loadMillis());
        if (pipeline.stream().allMatch(s -> s.ready)) {
            CodecId codec = CodecId.fromName(settings.linkCodec());
            if (pipeline.size() > 1 && (codec == CodecId.INT4_RPTQ || codec == CodecId.INT3_RPTQ)) {
                return calibrateLinks();
            }
            return startServing();
        }
        return Behaviors.same();
    }

    // ---- link calibration (RPTQ links) ---------------------------------------------------------------------

    /**
     * Runs calibration sequences through the pipeline (FP16 frames, caches thrown away), collects the
     * per-channel range of what crossed each link, clusters the channels (RPTQ) and sends each link's plan
     * to both its ends; serving starts once all have acknowledged.
     */
    private Behavior<Command> calibrateLinks() {
        int sequences = settings.linkCalibrationSequences();
        int tokens = Math.min(settings.linkCalibrationTokens(), model.maxPositions());
        java.util.SplittableRandom random = new java.util.SplittableRandom(settings.linkCalibrationSeed());
        Set<Long> pending = new HashSet<>();
        long batchId = -1_000_000; // apart from the scheduler's ids, which count up from 1
        for (int first = 0; first < sequences; first += 2) {
            List<MicroBatch.Entry> entries = new ArrayList<>();
            for (int i = first; i < Math.min(sequences, first + 2); i++) {
                // Ids from the top of the range: the scheduler counts its sequences up from 1.
                entries.add(new MicroBatch.Entry(Integer.MAX_VALUE - i, random.ints(tokens, 4, model.vocabSize()).toArray(), 0, null));
            }
            MicroBatch batch = new MicroBatch(batchId, 0, entries.toArray(MicroBatch.Entry[]::new), true);
            pending.add(batchId);
            pipeline.getFirst().worker.worker().tell(new StageWorker.RunStep(batch));
            timers.startSingleTimer(batchId, new StepDeadline(batchId), settings.stepTimeout());
            batchId--;
        }
        context.getLog().info("calibrating {} link(s) for {} with {} sequences × {} tokens", pipeline.size() - 1,
                settings.linkCodec(), sequences, tokens);
        return calibrating(pending);
    }

    private Behavior<Command> calibrating(Set<Long> pendingBatches) {
        ActorRef<StageWorker.LinkRanges> rangesAdapter = context.messageAdapter(StageWorker.LinkRanges.class, LinkRangesArrived::new);
        StageWorker.LinkRanges[] ranges = new StageWorker.LinkRanges[pipeline.size() - 1];
        int[] pendingAcks = {2 * (pipeline.size() - 1)};
        return Behaviors.receive(Command.class)
                .onMessage(CalibrationStepDone.class, m -> {
                    timers.cancel(m.batchId());
                    if (pendingBatches.remove(m.batchId()) && pendingBatches.isEmpty()) {
                        for (int i = 0; i < pipeline.size() - 1; i++) {
                            pipeline.get(i).worker.worker().tell(new StageWorker.ReportLinkRanges(rangesAdapter));
                        }
                    }
                    return Behaviors.same();
                })
                .onMessage(LinkRangesArrived.class, m -> {
                    ranges[m.ranges().stageIndex()] = m.ranges();
                    if (java.util.Arrays.stream(ranges).allMatch(java.util.Objects::nonNull)) {
                        sendPlans(ranges);
                    }
                    return Behaviors.same();
                })
                .onMessage(LinkPlanApplied.class, m -> --pendingAcks[0] == 0 ? startServing() : Behaviors.same())
                .onMessage(StepFailed.class, m -> fail("link calibration failed at stage " + m.stageIndex() + ": " + m.reason()))
                .onMessage(StepDeadline.class, m -> pendingBatches.contains(m.batchId())
                        ? fail("link calibration micro-batch " + m.batchId() + " did not come back within " + settings.stepTimeout())
                        : Behaviors.same())
                .onMessage(WorkersChanged.class, this::onWorkersChangedWhileRunning)
                .onMessage(WorkerDescribed.class, this::rememberLateWorker)
                .onMessage(Submit.class, this::queue)
                .onMessage(Cancel.class, this::cancel)
                .onMessage(GetStatus.class, m -> reply(m, "calibrating"))
                .onAnyMessage(this::ignore)
                .build();
    }

    private void sendPlans(StageWorker.LinkRanges[] ranges) {
        ChannelClustering clustering = new ChannelClustering(settings.linkClusters());
        for (int i = 0; i < ranges.length; i++) {
            ClusterPlan plan = clustering.plan(ranges[i].min(), ranges[i].max());
            byte[] bytes = plan.toBytes();
            context.getLog().info("link {} → {}: {} clusters of sizes {}", i, i + 1, plan.clusters(), clusterSizes(plan));
            pipeline.get(i).worker.worker().tell(new StageWorker.UseLinkPlan(bytes, settings.linkStaticRanges(), true, context.getSelf()));
            pipeline.get(i + 1).worker.worker().tell(new StageWorker.UseLinkPlan(bytes, settings.linkStaticRanges(), false, context.getSelf()));
        }
    }

    private static String clusterSizes(ClusterPlan plan) {
        StringBuilder sizes = new StringBuilder();
        for (int c = 0; c < plan.clusters(); c++) {
            sizes.append(c == 0 ? "" : ", ").append(plan.clusterSize(c));
        }
        return sizes.toString();
    }

    Behavior<Command> startServing() {
        context.getLog().info("pipeline of {} stages serving", pipeline.size());
        dispatch();
        return serving();
    }

    private Behavior<Command> onStageFailed(StageFailed message) {
        return fail("stage " + message.stageIndex() + " failed to load: " + message.reason());
    }

    private Behavior<Command> onWorkersChangedWhileRunning(WorkersChanged message) {
        onWorkersChanged(message);
        for (Stage stage : pipeline) {
            if (!message.workers().contains(stage.worker.worker())) {
                String reason = "worker " + stage.worker.workerId() + " (stage " + pipeline.indexOf(stage) + ") left the cluster";
                context.getLog().warn(reason);
                scheduler.failAll(reason, this::relay);
                pipeline = List.of();
                if (described.size() >= settings.expectedWorkers()) {
                    return place();
                }
                return gathering();
            }
        }
        return Behaviors.same();
    }

    private Behavior<Command> fail(String reason) {
        error = reason;
        context.getLog().error(reason);
        scheduler.failAll(reason, this::relay);
        return failed();
    }

    // ---- scheduling -----------------------------------------------------------------------------------------

    private Behavior<Command> queue(Submit message) {
        try {
            scheduler.submit(message.job(), message.replyTo());
        } catch (IllegalArgumentException e) {
            message.replyTo().tell(new JobEvent.JobFailed(message.job().requestId(), e.getMessage()));
        }
        return Behaviors.same();
    }

    private Behavior<Command> cancel(Cancel message) {
        int sequence = scheduler.cancel(message.requestId(), this::relay);
        if (sequence >= 0) {
            closeSequences(List.of(sequence));
        }
        return Behaviors.same();
    }

    private void dispatch() {
        if (pipeline.isEmpty()) {
            return;
        }
        ActorRef<StageWorker.Command> first = pipeline.getFirst().worker.worker();
        for (MicroBatch batch : scheduler.dispatch()) {
            first.tell(new StageWorker.RunStep(batch));
            timers.startSingleTimer(batch.batchId(), new StepDeadline(batch.batchId()), settings.stepTimeout());
        }
    }

    private Behavior<Command> onStepCompleted(StepCompleted message) {
        timers.cancel(message.batchId());
        try {
            closeSequences(scheduler.complete(message.batchId(), message.sequenceIds(), message.tokens(), this::relay));
        } catch (IllegalArgumentException e) {
            context.getLog().warn("ignoring step result: {}", e.getMessage());
        }
        dispatch();
        return Behaviors.same();
    }

    private Behavior<Command> onStepFailed(StepFailed message) {
        if (!scheduler.isInFlight(message.batchId())) {
            // A foreign or mangled frame: its header names no micro-batch of ours, so no request is at fault.
            context.getLog().warn("stage {} rejected a frame of no micro-batch in flight: {}", message.stageIndex(), message.reason());
            return Behaviors.same();
        }
        timers.cancel(message.batchId());
        context.getLog().warn("micro-batch {} failed at stage {}: {}", message.batchId(), message.stageIndex(), message.reason());
        closeSequences(scheduler.fail(message.batchId(), "stage " + message.stageIndex() + ": " + message.reason(), this::relay));
        dispatch();
        return Behaviors.same();
    }

    private Behavior<Command> onStepDeadline(StepDeadline message) {
        if (scheduler.isInFlight(message.batchId())) {
            String reason = "micro-batch " + message.batchId() + " did not come back within " + settings.stepTimeout();
            context.getLog().warn(reason);
            closeSequences(scheduler.fail(message.batchId(), reason, this::relay));
            dispatch();
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
            case Scheduler.Token<ActorRef<JobEvent>> t -> t.client().tell(new JobEvent.TokenGenerated(t.requestId(), t.token()));
            case Scheduler.Finished<ActorRef<JobEvent>> f -> f.client().tell(new JobEvent.JobFinished(f.requestId(), f.reason()));
            case Scheduler.Failed<ActorRef<JobEvent>> f -> f.client().tell(new JobEvent.JobFailed(f.requestId(), f.reason()));
        }
    }

    private Behavior<Command> reply(GetStatus message, String phase) {
        StageView[] stages = pipeline.stream().map(s -> new StageView(pipeline.indexOf(s), s.worker.workerId(), s.worker.host(),
                s.worker.device(), s.plan.firstLayer(), s.plan.endLayer(), s.plan.weightBytes(), s.ready)).toArray(StageView[]::new);
        String[] codecs = new String[Math.max(0, pipeline.size() - 1)];
        java.util.Arrays.fill(codecs, settings.linkCodec());
        message.replyTo().tell(new Status(phase, described.size(), stages, codecs, scheduler.waitingCount(),
                scheduler.activeCount(), scheduler.inFlightCount(), error));
        return Behaviors.same();
    }

    private Behavior<Command> collectStats(CollectStats message) {
        List<ActorRef<StageWorker.Command>> stages = pipeline.stream().map(s -> s.worker.worker()).toList();
        context.spawnAnonymous(StatsAggregator.create(stages, message.replyTo(), java.time.Duration.ofSeconds(10)));
        return Behaviors.same();
    }

    private Behavior<Command> ignore(Command message) {
        context.getLog().debug("ignoring {} in this phase", message.getClass().getSimpleName());
        return Behaviors.same();
    }
}
