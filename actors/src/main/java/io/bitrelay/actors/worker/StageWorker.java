package io.bitrelay.actors.worker;

import io.bitrelay.actors.dataplane.DataPlane;
import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.actors.pipeline.StatsChunk;
import io.bitrelay.actors.pipeline.StatsChunks;
import io.bitrelay.runtime.eval.TokenScore;
import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.quant.QuantPlan;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RecipeOptions;
import io.bitrelay.actors.serialization.ClusterMessage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Owns one device and serves the pipeline stage the coordinator assigns to it. The actor handles control
 * only; the stage's compute and its links run in a {@link StageEngine} on threads of their own, so a
 * long prefill never blocks the actor's mailbox.
 */
public final class StageWorker {
    public static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "bitrelay-stage-worker");
    public static final String ROLE = "worker";

    public sealed interface Command extends ClusterMessage {
    }

    /**
     * What a worker answers the one that drives it (the coordinator, through a message adapter): the address in
     * {@link Describe}, {@link LoadStage}, {@link UseLinkPlan}, {@link BeginRecipeCalibration} and {@link PlanEnd}.
     */
    public sealed interface Reply extends ClusterMessage {
    }

    public record WorkerDescribed(WorkerDescription description) implements Reply {
    }

    /**
     * @param restored       the stage serves the quantized layers its assignment named from the store
     * @param restoreProblem why the named saved layers could not be used (the coordinator calibrates), or null
     */
    /** @param placement the {@link LoadStage#placement} this answers: the coordinator ignores an earlier placement's */
    public record StageReady(int stageIndex, long weightBytes, long loadMillis, boolean restored, String restoreProblem,
                             long kvTokens, int placement) implements Reply {
    }

    /** @param placement the {@link LoadStage#placement} this answers */
    public record StageFailed(int stageIndex, String reason, int placement) implements Reply {
    }

    /**
     * The last stage sampled one token for each sequence of a step of the resident micro-batch, or scored its
     * prompt chunk; the first stage has the same tokens and runs the next step without waiting for this.
     *
     * @param scores per sequence: a scored chunk's prompt scores, the sampled token's score when the job asked
     *               for logprobs, or null; null as a whole when no sequence has any
     */
    public record StepCompleted(long batchId, int[] sequenceIds, int[] tokens, TokenScore[][] scores) implements Reply {
        public StepCompleted(long batchId, int[] sequenceIds, int[] tokens) {
            this(batchId, sequenceIds, tokens, null);
        }
    }

    /** The first stage took these cancelled sequences out of their resident batch; no step in the pipeline holds them. */
    public record SequencesLeft(long batchId, int[] sequenceIds) implements Reply {
    }

    /** A stage could not run a micro-batch (a rejected frame, a failed kernel, a lost cache). */
    public record StepFailed(long batchId, int stageIndex, String reason) implements Reply {
    }

    /** The last stage finished a calibration micro-batch. */
    public record CalibrationStepDone(long batchId) implements Reply {
    }

    /** A stage switched one of its links to the RPTQ plan it was sent. */
    public record LinkPlanApplied(int stageIndex, boolean outbound) implements Reply {
    }

    /** A stage records every quantization point of calibration batches from now on. */
    public record RecipeCalibrationReady(int stageIndex) implements Reply {
    }

    /**
     * A stage built its part of the QuantPlan and serves it.
     *
     * @param file        where it saved its layers (with their size and CRC32C), or null
     * @param saveProblem why it could not save them (it serves anyway), or null
     * @param error       why it could not build them (the pipeline fails), or null
     */
    public record QuantPlanApplied(int stageIndex, String file, long bytes, long crc32c, String saveProblem, String error)
            implements Reply {
    }

    public record Describe(ActorRef<Reply> replyTo) implements Command {
    }

    /** @param head the first stage's worker, to which the last stage hands each step's sampled tokens */
    /**
     * @param placement the coordinator's count of pipelines placed: echoed by {@link StageReady} and {@link StageFailed},
     *                  so that a late answer to an earlier placement (a worker lost and replaced while stages loaded)
     *                  cannot mark this placement's stage ready or failed
     */
    public record LoadStage(StageAssignment assignment, ActorRef<Reply> coordinator, ActorRef<Command> head, int placement)
            implements Command {
    }

    /**
     * First stage only: the entries join the resident micro-batch of that id (see {@link ResidentBatches}); a
     * calibration batch runs once.
     */
    public record RunStep(MicroBatch batch) implements Command {
    }

    /** First stage only, from the last: the tokens sampled for a resident batch's step; its next step can start. */
    public record StepSampled(long batchId, int[] sequenceIds, int[] tokens) implements Command {
    }

    /**
     * First stage only: cancelled sequences leave their resident batch; answered with
     * {@link SequencesLeft} once no step in the pipeline holds them.
     */
    public record LeaveBatch(long batchId, int[] sequenceIds) implements Command {
    }

    /** First stage only: a step of this batch failed and the coordinator failed its sequences; forget it. */
    public record DropBatch(long batchId) implements Command {
    }

    /** The sequences ended: free their KV caches (and, on the last stage, their samplers). */
    public record CloseSequences(int[] sequenceIds) implements Command {
    }

    public record ReportStats(ActorRef<StageStats> replyTo) implements Command {
    }

    /** Corrupts this stage's next outgoing frame: flip, truncate or version (needs allow-fault-injection). */
    public record InjectFault(String kind) implements Command {
    }

    /** Non-last stages: the per-channel ranges of the hidden states they sent during link calibration. */
    public record ReportLinkRanges(ActorRef<LinkRanges> replyTo) implements Command {
    }

    public record LinkRanges(int stageIndex, float[] min, float[] max) implements ClusterMessage {
    }

    /** The RPTQ cluster plan of one link: the sender encodes with it, the receiver decodes with it; acknowledged. */
    public record UseLinkPlan(byte[] plan, boolean staticRanges, boolean outbound, ActorRef<Reply> replyTo) implements Command {
    }

    /** Recipe calibration: calibration batches from now on run on the FP32 stage, every quantization point recorded; acknowledged. */
    public record BeginRecipeCalibration(ActorRef<Reply> replyTo) implements Command {
    }

    /** Sends what recipe calibration recorded, as {@link StatsChunk}s, and stops recording. */
    public record ReportCalibration(ActorRef<StatsChunk> replyTo) implements Command {
    }

    /**
     * The first message of this stage's part of a QuantPlan; {@link PlanChunk}s and {@link PlanReorder}s follow,
     * then {@link PlanEnd}. The parts travel separately to stay under Artery's frame size (see {@link StatsChunk}).
     *
     * @param options   the coordinator's recipe options: the built recipe's weights grid and bias correction, and
     *                  the estimator the statistics' ranges were made with
     * @param statsText what the statistics were calibrated on (their source), with sequences × seqLen tokens
     */
    public record PlanBegin(String recipe, RecipeOptions options, float alpha, String statsText, int sequences, int seqLen)
            implements Command {
        /** The recipe to build: the named one with the options applied (a name alone means symmetric weights). */
        public QuantRecipe quantRecipe() {
            return options.applyTo(QuantRecipe.byName(recipe));
        }
    }

    public record PlanChunk(StatsChunk chunk) implements Command {
    }

    /** An RPTQ channel plan of the QuantPlan ({@code ClusterPlan.toBytes}) for one (layer, site). */
    public record PlanReorder(int layer, String site, byte[] plan) implements Command {
    }

    /**
     * The end of the plan part: build the stage with it ({@code RecipeApplier.apply}), save the result to
     * {@code saveFile} when it is not null, and answer {@link QuantPlanApplied}.
     */
    public record PlanEnd(int chunks, int reorders, String saveFile, ActorRef<Reply> replyTo) implements Command {
    }

    /** @param load which {@link LoadStage} this answers: only the latest one's stage serves */
    private record Loaded(StageEngine engine, long loadMillis, ActorRef<Reply> coordinator, long load, int placement)
            implements Command {
    }

    private record LoadFailed(int stageIndex, String reason, ActorRef<Reply> coordinator, long load, int placement)
            implements Command {
    }

    public static Behavior<Command> create(WorkerSettings settings, DataPlane dataPlane) {
        return Behaviors.setup(context -> {
            context.getSystem().receptionist().tell(Receptionist.register(KEY, context.getSelf()));
            ExecutorService loader = Executors.newSingleThreadExecutor(Thread.ofPlatform().name("stage-loader").daemon().factory());
            return new StageWorker(context, settings, dataPlane, loader).idle(null);
        });
    }

    private final ActorContext<Command> context;
    private final WorkerSettings settings;
    private final DataPlane dataPlane;
    private final ExecutorService loader;
    /**
     * LoadStage messages received: a pipeline rebuilt while this worker still loaded (a worker lost during start-up)
     * supersedes the load under way, whose stage is shut down unreported when it completes.
     */
    private long loads;
    /** The highest stream id of the links of a stage this worker was given ({@link WorkerDescription#streamsUpTo()}). */
    private int streamsUpTo;

    private StageWorker(ActorContext<Command> context, WorkerSettings settings, DataPlane dataPlane, ExecutorService loader) {
        this.context = context;
        this.settings = settings;
        this.dataPlane = dataPlane;
        this.loader = loader;
    }

    private WorkerDescription describe() {
        return new WorkerDescription(context.getSelf(), settings.workerId(), settings.host(), settings.device(),
                settings.memoryBytes(), settings.dataPort(), streamsUpTo);
    }

    /** No stage (yet), or the previous one was dropped; {@code engine} is the stage still serving, or null. */
    private Behavior<Command> idle(StageEngine engine) {
        return Behaviors.receive(Command.class)
                .onMessage(Describe.class, m -> {
                    m.replyTo().tell(new WorkerDescribed(describe()));
                    return Behaviors.same();
                })
                .onMessage(LoadStage.class, m -> load(m, engine))
                .onMessage(Loaded.class, m -> {
                    if (m.load() != loads) {
                        return dropSuperseded(m);
                    }
                    m.coordinator().tell(new StageReady(m.engine().stageIndex(), m.engine().weightBytes(), m.loadMillis(),
                            m.engine().restored(), m.engine().restoreProblem(), m.engine().kvTokens(), m.placement()));
                    return serving(m.engine());
                })
                .onMessage(LoadFailed.class, m -> {
                    if (m.load() != loads) {
                        return Behaviors.same();
                    }
                    context.getLog().error("stage {} failed to load: {}", m.stageIndex(), m.reason());
                    m.coordinator().tell(new StageFailed(m.stageIndex(), m.reason(), m.placement()));
                    return Behaviors.same();
                })
                .onMessage(RunStep.class, m -> {
                    context.getLog().warn("micro-batch {} arrived before any stage was loaded", m.batch().batchId());
                    return Behaviors.same();
                })
                .onMessage(StepSampled.class, m -> Behaviors.same())
                .onMessage(LeaveBatch.class, m -> Behaviors.same())
                .onMessage(DropBatch.class, m -> Behaviors.same())
                .onMessage(ReportStats.class, m -> Behaviors.same())
                .onMessage(CloseSequences.class, m -> Behaviors.same())
                .onMessage(InjectFault.class, m -> Behaviors.same())
                .onMessage(ReportLinkRanges.class, m -> Behaviors.same())
                .onMessage(UseLinkPlan.class, m -> Behaviors.same())
                .onMessage(BeginRecipeCalibration.class, m -> Behaviors.same())
                .onMessage(ReportCalibration.class, m -> Behaviors.same())
                .onMessage(PlanBegin.class, m -> Behaviors.same())
                .onMessage(PlanChunk.class, m -> Behaviors.same())
                .onMessage(PlanReorder.class, m -> Behaviors.same())
                .onMessage(PlanEnd.class, m -> Behaviors.same())
                .onSignal(PostStop.class, s -> shutdown(engine))
                .build();
    }

    private Behavior<Command> serving(StageEngine engine) {
        return Behaviors.receive(Command.class)
                .onMessage(Describe.class, m -> {
                    m.replyTo().tell(new WorkerDescribed(describe()));
                    return Behaviors.same();
                })
                .onMessage(RunStep.class, m -> {
                    engine.runStep(m.batch());
                    return Behaviors.same();
                })
                .onMessage(StepSampled.class, m -> {
                    engine.sampled(m.batchId(), m.sequenceIds(), m.tokens());
                    return Behaviors.same();
                })
                .onMessage(LeaveBatch.class, m -> {
                    engine.leave(m.batchId(), m.sequenceIds());
                    return Behaviors.same();
                })
                .onMessage(DropBatch.class, m -> {
                    engine.drop(m.batchId());
                    return Behaviors.same();
                })
                .onMessage(CloseSequences.class, m -> {
                    engine.close(m.sequenceIds());
                    return Behaviors.same();
                })
                .onMessage(ReportStats.class, m -> {
                    m.replyTo().tell(engine.stats());
                    return Behaviors.same();
                })
                .onMessage(InjectFault.class, m -> {
                    if (!settings.allowFaultInjection()) {
                        context.getLog().warn("refusing InjectFault({}): bitrelay.worker.allow-fault-injection is off", m.kind());
                    } else {
                        engine.injectFault(FrameFault.parse(m.kind()));
                    }
                    return Behaviors.same();
                })
                .onMessage(ReportLinkRanges.class, m -> {
                    engine.reportLinkRanges(m.replyTo());
                    return Behaviors.same();
                })
                .onMessage(UseLinkPlan.class, m -> {
                    engine.useLinkPlan(io.bitrelay.runtime.quant.ClusterPlan.fromBytes(m.plan()), m.staticRanges(), m.outbound(), m.replyTo());
                    return Behaviors.same();
                })
                .onMessage(BeginRecipeCalibration.class, m -> {
                    engine.beginRecipeCalibration(m.replyTo());
                    return Behaviors.same();
                })
                .onMessage(ReportCalibration.class, m -> {
                    engine.reportCalibration(m.replyTo());
                    return Behaviors.same();
                })
                .onMessage(PlanBegin.class, m -> receivingPlan(engine, m, new StatsChunks.Assembler(), new java.util.HashMap<>()))
                .onMessage(LoadStage.class, m -> load(m, engine))
                .onMessage(Loaded.class, this::dropSuperseded)
                .onSignal(PostStop.class, s -> shutdown(engine))
                .build();
    }

    /** Serving, while the parts of a QuantPlan arrive (in order: one sender, one receiver). */
    private Behavior<Command> receivingPlan(StageEngine engine, PlanBegin begin, StatsChunks.Assembler chunks,
                                            java.util.Map<CalibrationStats.Key, ClusterPlan> reorders) {
        return Behaviors.receive(Command.class)
                .onMessage(PlanChunk.class, m -> {
                    chunks.add(m.chunk());
                    return Behaviors.same();
                })
                .onMessage(PlanReorder.class, m -> {
                    reorders.put(new CalibrationStats.Key(m.layer(), ActivationSite.fromKey(m.site())), ClusterPlan.fromBytes(m.plan()));
                    return Behaviors.same();
                })
                .onMessage(PlanEnd.class, m -> {
                    chunks.expect(m.chunks());
                    if (!chunks.complete() || reorders.size() != m.reorders()) {
                        String reason = "plan part incomplete: " + chunks.entries().size() + " statistics entries, "
                                + reorders.size() + "/" + m.reorders() + " reorders";
                        m.replyTo().tell(new QuantPlanApplied(engine.stageIndex(), null, 0, 0, null, reason));
                        return serving(engine);
                    }
                    QuantPlan plan;
                    try {
                        QuantRecipe recipe = begin.quantRecipe();
                        CalibrationStats stats = chunks.entries().isEmpty() && !recipe.needsCalibration() ? null
                                : new CalibrationStats(new CalibrationStats.Source("pipeline", begin.statsText(), begin.sequences(),
                                begin.seqLen(), begin.options().activationRanges()), chunks.entries());
                        plan = new QuantPlan(recipe, begin.alpha(), stats, reorders);
                    } catch (IllegalArgumentException e) {
                        m.replyTo().tell(new QuantPlanApplied(engine.stageIndex(), null, 0, 0, null, e.getMessage()));
                        return serving(engine);
                    }
                    engine.applyPlan(plan, m.saveFile(), m.replyTo());
                    return serving(engine);
                })
                .onMessage(Describe.class, m -> {
                    m.replyTo().tell(new WorkerDescribed(describe()));
                    return Behaviors.same();
                })
                .onMessage(ReportStats.class, m -> {
                    m.replyTo().tell(engine.stats());
                    return Behaviors.same();
                })
                .onMessage(LoadStage.class, m -> load(m, engine))
                .onMessage(Loaded.class, this::dropSuperseded)
                .onMessage(CloseSequences.class, m -> {
                    engine.close(m.sequenceIds());
                    return Behaviors.same();
                })
                .onSignal(PostStop.class, s -> shutdown(engine))
                .onAnyMessage(m -> {
                    context.getLog().warn("ignoring {} while a quantization plan arrives", m.getClass().getSimpleName());
                    return Behaviors.same();
                })
                .build();
    }

    private Behavior<Command> load(LoadStage message, StageEngine previous) {
        StageAssignment assignment = message.assignment();
        shutdown(previous);
        context.getLog().info("loading stage {}/{}: layers [{}, {}) of {}", assignment.stageIndex() + 1,
                assignment.stageCount(), assignment.firstLayer(), assignment.endLayer(), assignment.checkpointDir());
        long start = System.nanoTime();
        long load = ++loads;
        for (io.bitrelay.actors.dataplane.Link link : new io.bitrelay.actors.dataplane.Link[]{assignment.inbound(), assignment.outbound()}) {
            if (link != null) {
                streamsUpTo = Math.max(streamsUpTo, link.streamId());
            }
        }
        CompletableFuture<StageEngine> loading = CompletableFuture.supplyAsync(
                () -> StageEngine.start(assignment, settings, dataPlane, message.coordinator(),
                        assignment.stageIndex() == 0 ? null : message.head()), loader);
        context.pipeToSelf(loading, (engine, failure) -> failure == null
                ? new Loaded(engine, (System.nanoTime() - start) / 1_000_000, message.coordinator(), load, message.placement())
                : new LoadFailed(assignment.stageIndex(), rootMessage(failure), message.coordinator(), load, message.placement()));
        return idle(null);
    }

    /** A stage loaded for an assignment that a later LoadStage replaced: it never serves. */
    private Behavior<Command> dropSuperseded(Loaded message) {
        context.getLog().info("dropping stage {} loaded for a superseded assignment", message.engine().stageIndex());
        message.engine().shutdown();
        return Behaviors.same();
    }

    private Behavior<Command> shutdown(StageEngine engine) {
        if (engine != null) {
            engine.shutdown();
        }
        return Behaviors.same();
    }

    private static String rootMessage(Throwable failure) {
        Throwable cause = failure;
        while (cause.getCause() != null && (cause instanceof java.util.concurrent.CompletionException
                || cause.getMessage() == null)) {
            cause = cause.getCause();
        }
        return cause.getMessage() != null ? cause.getMessage() : cause.getClass().getSimpleName();
    }
}
