package io.bitrelay.actors.worker;

import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.dataplane.DataPlane;
import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.actors.pipeline.StatsChunk;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.quant.QuantPlan;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.FrameException;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.RptqLinkCodec;

import org.apache.pekko.actor.typed.ActorRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One pipeline stage at work: its slice of the model, the KV caches of its layers per sequence, and its
 * links. Micro-batches arrive as RunStep (first stage) or as frames from the previous stage, and are
 * computed one at a time, in arrival order, on the stage's compute thread; the result goes on as a frame
 * or, from the last stage, as sampled tokens to the coordinator. Whatever goes wrong with a micro-batch
 * is reported to the coordinator, which fails exactly the requests in it.
 *
 * <p>The step loop is the same whether the layers run on the CPU or the GPU: what differs lives in the stage's
 * {@link StageBackend}. Calibration steps keep their rows on the host; while the recipe is calibrated they run on
 * the CPU's FP32 stage ({@link StageQuantizer}) whatever the backend.
 */
final class StageEngine {
    private static final Logger LOG = LoggerFactory.getLogger(StageEngine.class);
    /** Frame flag: a calibration batch (whole throwaway sequences, no sampling). */
    static final int FLAG_CALIBRATION = 1;

    private final StageAssignment assignment;
    private final String workerId;
    private final StageModels models;
    /** Runs the layers, on the CPU or the worker's GPU; compute thread only. */
    private final StageBackend backend;
    private final boolean restored;
    private final String restoreProblem;
    /** KV cache positions this stage's memory holds (GPU: each sequence's cache sized for its request); unbounded on the CPU. */
    private final long kvTokens;
    private final StageQuantizer quantizer;
    /** The last stage's tokens and scores; compute thread only. */
    private final LastStageSampler sampler;
    private final ActorRef<StageWorker.Reply> coordinator;
    /** The first stage's worker (the last stage hands it the sampled tokens); null on the first stage. */
    private final ActorRef<StageWorker.Command> head;
    /** First stage: the resident micro-batches it feeds their own tokens; compute thread only. */
    private final ResidentBatches resident;
    private final ExecutorService compute;
    private final OutboundFrames outbound;
    private final AutoCloseable receiver;
    /** Replaced (on the compute thread) once an RPTQ plan for the inbound link arrives; requires tags when keyed. */
    private LinkFrameReader reader;
    /** Steps taken on the inbound link, on an authenticated link only (where a replayed frame would pass the tag). */
    private final ReplayGuard replays = new ReplayGuard();
    private final AtomicLong rejectedFrames = new AtomicLong();
    private final AtomicLong steps = new AtomicLong();
    private final AtomicLong computeNanos = new AtomicLong();
    private final StepClock clock = new StepClock();
    private volatile String lastRejection;
    private volatile int cachedSequences;
    private volatile long kvCacheBytes;
    /** Scratch of the step being computed (compute thread only). */
    private final StepArena stepArena = new StepArena();
    private final StepDurations durations = new StepDurations();
    private final FrameCopies frameCopies = new FrameCopies();
    /**
     * First and last stage at once, on a backend that runs steps ahead: a step's tokens stay on the device while the
     * next step is queued from them ({@link #drain}); every step's inputs are embedded there.
     */
    private final boolean stepsAhead;
    /** Steps ahead: per batch, the outcomes of its queued steps, oldest first (compute thread only). */
    private final Map<Long, ArrayDeque<LastStageSampler.Queued>> queuedOutcomes = new HashMap<>();
    /** Steps ahead: batches whose {@link #drain} task is queued on the compute thread. */
    private final Set<Long> draining = new HashSet<>();
    /** Steps ahead: one step's row table (token, fed index, position), reused. */
    private final int[] rowTokens;
    private final int[] rowFed;
    private final int[] rowPositions;

    private StageEngine(StageAssignment assignment, WorkerSettings settings, StageLoader.Loaded stage,
                        ActorRef<StageWorker.Reply> coordinator, ActorRef<StageWorker.Command> head, DataPlane dataPlane) {
        this.assignment = assignment;
        this.models = stage.models();
        this.backend = stage.backend();
        this.kvTokens = backend.kvTokens(settings.memoryBytes());
        this.workerId = settings.workerId();
        this.restored = stage.restored();
        this.restoreProblem = stage.restoreProblem();
        this.quantizer = new StageQuantizer(assignment, models, backend, stage.streamed(), settings.gptqSequences());
        this.sampler = new LastStageSampler(backend, models, clock, assignment.maxBatchTokens());
        this.coordinator = coordinator;
        this.head = head;
        this.resident = new ResidentBatches(assignment.maxBatchTokens());
        this.outbound = new OutboundFrames(assignment, backend, models.serving().config().hiddenSize(), dataPlane);
        this.reader = keyed(new LinkFrameReader());
        this.stepsAhead = assignment.isFirst() && assignment.isLast() && head == null && backend.runsStepsAhead();
        int rowTable = stepsAhead ? assignment.maxBatchTokens() : 0;
        this.rowTokens = new int[rowTable];
        this.rowFed = new int[rowTable];
        this.rowPositions = new int[rowTable];
        if (stepsAhead) {
            LOG.info("stage {}: runs steps ahead (each step queued from the previous one's tokens on the device)",
                    assignment.stageIndex());
        }
        this.compute = Executors.newSingleThreadExecutor(
                Thread.ofPlatform().name("stage-" + assignment.stageIndex() + "-compute").daemon().factory());
        this.receiver = assignment.inbound() == null ? null
                : dataPlane.receive(assignment.inbound(), this::onFrame, this::onLinkError);
    }

    /** @param head the first stage's worker, for the last stage's sampled tokens; null on the first stage itself */
    static StageEngine start(StageAssignment assignment, WorkerSettings settings, DataPlane dataPlane,
                             ActorRef<StageWorker.Reply> coordinator, ActorRef<StageWorker.Command> head) {
        StageLoader.Loaded stage = StageLoader.load(assignment, settings);
        try {
            return new StageEngine(assignment, settings, stage, coordinator, head, dataPlane);
        } catch (RuntimeException e) {
            stage.close();
            throw e;
        }
    }

    boolean restored() {
        return restored;
    }

    String restoreProblem() {
        return restoreProblem;
    }

    long kvTokens() {
        return kvTokens;
    }

    int stageIndex() {
        return assignment.stageIndex();
    }

    long weightBytes() {
        return backend.weightBytes();
    }

    // ---- arrivals ------------------------------------------------------------------------------------------

    /** A calibration batch runs once; a serving batch's entries join its resident batch. */
    void runStep(MicroBatch batch) {
        long arrived = System.nanoTime();
        if (batch.calibration()) {
            compute.execute(() -> guarded(batch.batchId(), () -> {
                clock.start(arrived);
                computeFirst(batch);
            }));
            return;
        }
        compute.execute(() -> runNext(() -> resident.join(batch), batch.batchId(), arrived));
    }

    /** First stage: the last stage's tokens for a resident batch's step (from its own compute thread when it is last too). */
    void sampled(long batchId, int[] sequenceIds, int[] tokens) {
        long arrived = System.nanoTime();
        compute.execute(() -> runNext(() -> resident.sampled(batchId, sequenceIds, tokens), batchId, arrived));
    }

    void leave(long batchId, int[] sequenceIds) {
        long arrived = System.nanoTime();
        compute.execute(() -> runNext(() -> resident.leave(batchId, sequenceIds), batchId, arrived));
    }

    void drop(long batchId) {
        compute.execute(() -> {
            resident.drop(batchId);
            queuedOutcomes.remove(batchId); // a queued step's tokens are nobody's now; its buffers are reused later
        });
    }

    /** Confirms the members that left, then computes the step the event made, if any; compute thread. */
    private void runNext(java.util.function.Supplier<ResidentBatches.Next> event, long batchId, long arrived) {
        guarded(batchId, () -> {
            ResidentBatches.Next next = event.get();
            if (next.left().length > 0) {
                coordinator.tell(new StageWorker.SequencesLeft(next.batchId(), next.left()));
            }
            if (next.step() != null) {
                clock.start(arrived);
                computeFirst(next.step());
            }
        });
    }

    /** Called on the data plane's thread; the frame is copied so that thread can go back to polling. */
    private void onFrame(MemorySegment frame) {
        MemorySegment copy = frameCopies.copy(frame);
        long arrived = System.nanoTime();
        compute.execute(() -> {
            try {
                clock.start(arrived);
                computeFrame(copy);
            } finally {
                frameCopies.recycle(copy);
            }
        });
    }

    private void onLinkError(String reason) {
        rejectedFrames.incrementAndGet();
        lastRejection = reason;
        LOG.warn("stage {}: inbound link error: {}", assignment.stageIndex(), reason);
    }

    void close(int[] sequenceIds) {
        compute.execute(() -> {
            for (int id : sequenceIds) {
                backend.release(id);
                sampler.forget(id);
            }
            updateCacheGauges();
        });
    }

    void reportLinkRanges(ActorRef<StageWorker.LinkRanges> replyTo) {
        compute.execute(() -> replyTo.tell(outbound.sentRanges()));
    }

    /** Switches the outbound codec (sender) or the frame reader (receiver) to the link's cluster plan. */
    void useLinkPlan(ClusterPlan plan, boolean staticRanges, boolean outbound, ActorRef<StageWorker.Reply> replyTo) {
        RptqLinkCodec.Ranges ranges = staticRanges ? RptqLinkCodec.Ranges.STATIC : RptqLinkCodec.Ranges.DYNAMIC;
        compute.execute(() -> {
            if (outbound) {
                this.outbound.usePlan(plan, ranges);
            } else {
                reader = keyed(new LinkFrameReader(LinkCodecs.all(plan, ranges)));
            }
            LOG.info("stage {}: {} link uses RPTQ plan {} ({} clusters)", assignment.stageIndex(),
                    outbound ? "outbound" : "inbound", Integer.toHexString(plan.fingerprint()), plan.clusters());
            replyTo.tell(new StageWorker.LinkPlanApplied(assignment.stageIndex(), outbound));
        });
    }

    /** Refused at once, not behind queued steps, when the host holds no layers. */
    void beginRecipeCalibration(ActorRef<StageWorker.Reply> replyTo) {
        String problem = quantizer.hostLayersProblem("calibrate");
        if (problem != null) {
            replyTo.tell(new StageWorker.StepFailed(-1, assignment.stageIndex(), problem));
            return;
        }
        compute.execute(() -> quantizer.begin(replyTo));
    }

    /** Sends the recorded statistics in chunks small enough for one Artery frame each, then stops recording. */
    void reportCalibration(ActorRef<StatsChunk> replyTo) {
        compute.execute(() -> quantizer.report(replyTo));
    }

    /** Builds the stage {@code plan} describes from the FP32 stage, serves with it, saves it when asked; acknowledged. */
    void applyPlan(QuantPlan plan, String saveFile, ActorRef<StageWorker.Reply> replyTo) {
        String problem = quantizer.hostLayersProblem("quantize");
        if (problem != null) {
            replyTo.tell(new StageWorker.QuantPlanApplied(assignment.stageIndex(), null, 0, 0, null, problem));
            return;
        }
        compute.execute(() -> quantizer.applyPlan(plan, saveFile, replyTo));
    }

    void injectFault(FrameFault fault) {
        outbound.injectFault(fault);
    }

    // ---- compute ---------------------------------------------------------------------------------------------

    private void computeFirst(MicroBatch batch) {
        List<BatchLayout.Entry> entries = new ArrayList<>();
        List<int[]> tokens = new ArrayList<>();
        int[] starts = new int[batch.entries().length];
        for (MicroBatch.Entry entry : batch.entries()) {
            starts[entries.size()] = entry.startPosition();
            entries.add(new BatchLayout.Entry(entry.sequenceId(), entry.tokens().length, entry.startPosition(),
                    entry.firstChunkSampling(), entry.logprobs(), entry.targets(), entry.kvCapacity(), entry.partialPrompt()));
            tokens.add(entry.tokens());
        }
        BatchLayout layout = new BatchLayout(entries);
        long start = System.nanoTime();
        try (Arena step = stepArena) {
            if (batch.calibration()) {
                MemorySegment hidden = (quantizer.recording() ? models.base() : models.serving()).embed(tokens, starts, step);
                clock.lap(StepPhase.INPUT);
                calibrate(batch.batchId(), batch.step(), layout, tokens, hidden, step, start);
                return;
            }
            MemorySegment hidden = stepsAhead ? embedOnDevice(batch, layout)
                    : backend.load(models.serving().embed(tokens, starts, step), layout);
            clock.lap(StepPhase.INPUT);
            serve(batch.batchId(), batch.step(), layout, tokens, hidden, step, start);
        }
    }

    private void computeFrame(MemorySegment frame) {
        long claimedBatch = claimedBatchId(frame);
        LinkFrameReader validated;
        try {
            validated = reader.wrap(frame);
            int width = models.serving().config().hiddenSize();
            if (validated.targetStage() != assignment.stageIndex() || validated.width() != width) {
                throw new FrameException(FrameException.Reason.BAD_SIZES, "frame for stage " + validated.targetStage()
                        + " of width " + validated.width() + " reached stage " + assignment.stageIndex() + " of width "
                        + width);
            }
            if (assignment.linkKey() != null && !replays.admit(validated.batchId(), validated.step())) {
                throw new FrameException(FrameException.Reason.REPLAYED, "step " + validated.step() + " of micro-batch "
                        + validated.batchId() + " after its step " + replays.lastStep(validated.batchId()));
            }
        } catch (FrameException e) {
            rejectedFrames.incrementAndGet();
            String reason = "frame on " + assignment.inbound().describe() + " rejected: " + e.getMessage();
            lastRejection = reason;
            LOG.warn("stage {}: {}", assignment.stageIndex(), reason);
            // A forged or replayed frame's batch id is not to be trusted: failing that batch would hand anyone who can
            // reach the port a way to kill requests. Counted and logged; the genuine frame still comes.
            boolean unauthenticated = e.reason() == FrameException.Reason.BAD_TAG || e.reason() == FrameException.Reason.REPLAYED;
            if (!unauthenticated) {
                coordinator.tell(new StageWorker.StepFailed(claimedBatch, assignment.stageIndex(), reason));
            }
            return;
        }
        long batchId = validated.batchId();
        boolean calibration = (validated.flags() & FLAG_CALIBRATION) != 0;
        guarded(batchId, () -> {
            BatchLayout layout = validated.batchLayout();
            long start = System.nanoTime();
            try (Arena step = stepArena) {
                if (calibration) {
                    MemorySegment hidden = StageBackend.decodeOnHost(validated, step);
                    clock.lap(StepPhase.INPUT);
                    calibrate(batchId, validated.step(), layout, null, hidden, step, start);
                    return;
                }
                MemorySegment hidden = backend.receive(validated, layout, step);
                clock.lap(StepPhase.INPUT);
                serve(batchId, validated.step(), layout, null, hidden, step, start);
            }
        });
    }

    /**
     * A serving step past its input, the same on every backend: the layers, then the last stage's tokens to the
     * coordinator and the first stage, or the frame to the next stage. {@code hidden} is the step's rows as the
     * backend took them in (host rows, or {@link StageBackend#ON_DEVICE}); {@code tokens} is null past the first stage.
     */
    private void serve(long batchId, int stepNumber, BatchLayout layout, List<int[]> tokens, MemorySegment hidden, Arena step,
                       long startNanos) {
        backend.runLayers(layout, tokens, hidden, step);
        clock.lap(StepPhase.LAYERS);
        if (stepsAhead) {
            queuedOutcomes.computeIfAbsent(batchId, id -> new ArrayDeque<>(2)).add(sampler.queue(layout, hidden, step));
            scheduleDrain(batchId);
        } else if (assignment.isLast()) {
            LastStageSampler.StepOutcome outcome = sampler.sampleOrScore(layout, hidden, step);
            coordinator.tell(new StageWorker.StepCompleted(batchId, outcome.sequenceIds(), outcome.tokens(), outcome.scores()));
            if (head == null) {
                sampled(batchId, outcome.sequenceIds(), outcome.tokens()); // queued: a join or close waiting goes first
            } else {
                head.tell(new StageWorker.StepSampled(batchId, outcome.sequenceIds(), outcome.tokens()));
            }
        } else {
            outbound.send(batchId, stepNumber, layout, hidden, step);
        }
        clock.lap(StepPhase.OUTPUT);
        recordCompute(startNanos);
        durations.record(layout, System.nanoTime() - startNanos);
        updateCacheGauges();
    }

    /**
     * Steps ahead: a step's inputs embedded on the device, a decoding member's token read there from the pass of the
     * batch's step out (queued last), so this step can be queued before that one's tokens reach the host.
     */
    private MemorySegment embedOnDevice(MicroBatch batch, BatchLayout layout) {
        ArrayDeque<LastStageSampler.Queued> queued = queuedOutcomes.get(batch.batchId());
        LastStageSampler.Queued previous = queued == null ? null : queued.peekLast();
        int row = 0;
        int cursor = 0;
        boolean anyFed = false;
        for (MicroBatch.Entry entry : batch.entries()) {
            int[] tokens = entry.tokens();
            for (int i = 0; i < tokens.length; i++, row++) {
                rowPositions[row] = entry.startPosition() + i;
                rowTokens[row] = tokens[i];
                rowFed[row] = -1;
                if (tokens[i] == ResidentBatches.SAMPLED_ON_DEVICE) {
                    int index = previous == null || !previous.onDevice() ? -1 : previous.tokenIndex(entry.sequenceId(), cursor);
                    if (index < 0) {
                        throw new IllegalStateException("micro-batch " + batch.batchId() + ": sequence " + entry.sequenceId()
                                + " is fed a token sampled on the device, but the step before sampled none for it");
                    }
                    rowFed[row] = index;
                    cursor = index + 1;
                    anyFed = true;
                }
            }
        }
        return backend.embedOnDevice(layout.tokens(), rowTokens, rowFed, rowPositions, anyFed ? previous.pass() : null);
    }

    private void scheduleDrain(long batchId) {
        if (draining.add(batchId)) {
            compute.execute(() -> drain(batchId));
        }
    }

    /**
     * Steps ahead: hands on the oldest queued outcome of {@code batchId}. When it is still on the device and nothing
     * else is queued, the batch's next step is formed and queued from its tokens first, so the device works on step
     * s + 1 while the host waits for step s's tokens, reports them and forms step s + 2. A task of its own, so that
     * joins, leaves and closes queued meanwhile go first.
     */
    private void drain(long batchId) {
        draining.remove(batchId);
        guarded(batchId, () -> {
            ArrayDeque<LastStageSampler.Queued> queued = queuedOutcomes.get(batchId);
            if (queued == null || queued.isEmpty()) {
                return;
            }
            if (queued.size() == 1 && queued.peek().onDevice()) {
                ResidentBatches.Next ahead = resident.ahead(batchId);
                if (ahead.step() != null) {
                    clock.start(System.nanoTime());
                    computeFirst(ahead.step());
                }
            }
            LastStageSampler.Queued oldest = queued.poll();
            if (queued.isEmpty()) {
                queuedOutcomes.remove(batchId);
            }
            long waiting = System.nanoTime();
            clock.start(waiting);
            LastStageSampler.StepOutcome outcome = sampler.collect(oldest);
            clock.lap(StepPhase.HEAD);
            coordinator.tell(new StageWorker.StepCompleted(batchId, outcome.sequenceIds(), outcome.tokens(), outcome.scores()));
            ResidentBatches.Next next = resident.sampled(batchId, outcome.sequenceIds(), outcome.tokens());
            if (next.left().length > 0) {
                coordinator.tell(new StageWorker.SequencesLeft(next.batchId(), next.left()));
            }
            clock.lap(StepPhase.OUTPUT);
            if (next.step() != null) {
                clock.start(System.nanoTime());
                computeFirst(next.step());
            }
            if (queuedOutcomes.containsKey(batchId)) {
                scheduleDrain(batchId);
            }
        });
    }

    /**
     * A calibration step past its input: whole throwaway sequences over host rows. While the recipe is calibrated
     * they run on the CPU's FP32 stage, which records every quantization point, whatever the backend; otherwise
     * (link calibration) on the backend, and what this stage sends is what the link will carry.
     */
    private void calibrate(long batchId, int stepNumber, BatchLayout layout, List<int[]> tokens, MemorySegment hidden,
                           Arena step, long startNanos) {
        boolean recipe = quantizer.recording();
        if (recipe) {
            quantizer.runLayers(layout, tokens, hidden, step);
        } else {
            backend.runCalibration(layout, tokens, hidden, step);
        }
        clock.lap(StepPhase.LAYERS);
        recordCompute(startNanos);
        if (assignment.isLast()) {
            coordinator.tell(new StageWorker.CalibrationStepDone(batchId));
        } else {
            outbound.sendCalibration(batchId, stepNumber, layout, hidden, !recipe);
        }
    }

    private void guarded(long batchId, Runnable work) {
        try {
            work.run();
        } catch (RuntimeException e) {
            String reason = e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
            LOG.warn("stage {}: micro-batch {} failed: {}", assignment.stageIndex(), batchId, reason, e);
            coordinator.tell(new StageWorker.StepFailed(batchId, assignment.stageIndex(), reason));
        }
    }

    /** The reader demands the pipeline's seal on its inbound link when the assignment carries a link key. */
    private LinkFrameReader keyed(LinkFrameReader fresh) {
        return assignment.linkKey() == null || assignment.inbound() == null ? fresh
                : fresh.requireSeal(assignment.linkKey().seal(assignment.stageIndex() - 1, assignment.stageIndex()));
    }

    /** The batch id a rejected frame claims, if enough of its header arrived to read one; -1 otherwise. */
    private static long claimedBatchId(MemorySegment frame) {
        if (frame.byteSize() < LinkFrame.HEADER_BYTES) {
            return -1;
        }
        return frame.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), LinkFrame.BATCH_ID_OFFSET);
    }

    private void recordCompute(long startNanos) {
        steps.incrementAndGet();
        computeNanos.addAndGet(System.nanoTime() - startNanos);
    }

    private void updateCacheGauges() {
        cachedSequences = backend.cachedSequences();
        kvCacheBytes = backend.cacheBytes();
    }

    // ---- reporting and shutdown -----------------------------------------------------------------------------

    StageStats stats() {
        StageStats.LinkCounters outboundCounters = assignment.outbound() == null ? null : outbound.counters();
        return new StageStats(assignment.stageIndex(), workerId, assignment.firstLayer(), assignment.endLayer(), outboundCounters,
                rejectedFrames.get(), lastRejection, cachedSequences, kvCacheBytes, steps.get(), computeNanos.get(), clock.snapshot());
    }

    void shutdown() {
        compute.shutdownNow();
        try {
            compute.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        LOG.info("stage {} closing: {}", assignment.stageIndex(), durations.summary());
        closeQuietly(receiver);
        outbound.close();
        quantizer.close();
        closeQuietly(backend);
        stepArena.release();
        frameCopies.close();
        models.close();
    }

    private static void closeQuietly(AutoCloseable closeable) {
        if (closeable == null) {
            return;
        }
        try {
            closeable.close();
        } catch (Exception e) {
            LOG.warn("closing {}: {}", closeable, e.getMessage());
        }
    }
}
