package io.bitrelay.actors.worker;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.dataplane.DataPlane;
import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.actors.pipeline.StageQuantization;
import io.bitrelay.actors.pipeline.StatsChunk;
import io.bitrelay.actors.pipeline.StatsChunks;
import io.bitrelay.runtime.checkpoint.HfCheckpoint;
import io.bitrelay.runtime.cuda.kernels.KvCacheFormat;
import io.bitrelay.runtime.cuda.stage.GpuStage;
import io.bitrelay.runtime.cuda.stage.StageRecipe;
import io.bitrelay.runtime.eval.LogSoftmax;
import io.bitrelay.runtime.eval.PromptScoring;
import io.bitrelay.runtime.eval.TokenScore;
import io.bitrelay.runtime.generate.SamplingRows;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.KvPrecision;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.quant.CalibrationCollector;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.quant.QuantPlan;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RecipeApplier;
import io.bitrelay.runtime.quant.RecipeOptions;
import io.bitrelay.runtime.quant.store.QuantStoreException;
import io.bitrelay.runtime.quant.store.StageFile;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.FrameException;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;
import io.bitrelay.runtime.wire.LinkStats;
import io.bitrelay.runtime.wire.RptqLinkCodec;

import org.apache.pekko.actor.typed.ActorRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
 */
final class StageEngine {
    private static final Logger LOG = LoggerFactory.getLogger(StageEngine.class);
    /** Frame flag: a calibration batch (whole throwaway sequences, no sampling). */
    static final int FLAG_CALIBRATION = 1;

    private final StageAssignment assignment;
    private final String workerId;
    /** The stage's weights as loaded from the checkpoint; owns them, closed last. */
    private final OptModel loaded;
    /**
     * The FP32 stage with the assignment's KV cache precision: recipe calibration runs on it, and every
     * quantized stage is built from it (and so keeps that precision). A view of {@link #loaded}.
     */
    private final OptModel base;
    /** What serves: {@code base}, or the quantized stage built from it (restored, or from a plan); compute thread only. */
    private OptModel model;
    /** {@code model}'s decoder layers on the worker's GPU, or null when they run on the CPU; compute thread only. */
    private final GpuLayers gpu;
    /** The GPU stage's frames are coded on the device (bitrelay.worker.device-link-codecs). */
    private final boolean deviceLinks;
    /** The last stage samples from logits made on the GPU (bitrelay.worker.device-lm-head). */
    private final boolean deviceHead;
    private final boolean restored;
    /** The layers were streamed to the GPU: the host holds none, so this stage cannot calibrate or quantize. */
    private final boolean streamed;
    private final String restoreProblem;
    /** KV cache positions this stage's memory holds (GPU: each sequence's cache sized for its request); unbounded on the CPU. */
    private final long kvTokens;
    /** Records every quantization point while the coordinator calibrates the recipe; compute thread only. */
    private CalibrationCollector recipeCollector;
    /** GPTQ recipes: this stage's calibration inputs, kept here until the plan (GPTQ rounds layer by layer over them). */
    private GptqInputs gptqInputs;
    private final int gptqSequences;
    private final ActorRef<Coordinator.Command> coordinator;
    /** The first stage's worker (the last stage hands it the sampled tokens); null on the first stage. */
    private final ActorRef<StageWorker.Command> head;
    /** First stage: the resident micro-batches it feeds their own tokens; compute thread only. */
    private final ResidentBatches resident;
    private final ExecutorService compute;
    private final DataPlane.FrameSender sender;
    private final AutoCloseable receiver;
    /** The outbound link's codec; an RPTQ link sends FP16 until its cluster plan arrives from calibration. */
    private volatile LinkCodec codec;
    private final LinkFrameWriter writer = new LinkFrameWriter();
    /** Replaced (on the compute thread) once an RPTQ plan for the inbound link arrives. */
    private LinkFrameReader reader = new LinkFrameReader();
    /** Per-channel range of the hidden states sent in calibration batches, for the link's cluster plan. */
    private final float[] sentMin;
    private final float[] sentMax;
    private final LinkStats outboundStats = new LinkStats();
    private final Map<Integer, KvCache> caches = new HashMap<>();
    private final Map<Integer, SequenceSampling> samplings = new HashMap<>();
    /** Decode steps sample on the device (bitrelay.worker.device-sampling, with the head there). */
    private final boolean deviceSampling;
    /** The device-sampled rows of a step: parameters in, tokens out; reused every step (compute thread only). */
    private final SamplingRows deviceRows;
    private final int[] deviceTokens;
    private final AtomicLong rejectedFrames = new AtomicLong();
    private final AtomicLong steps = new AtomicLong();
    private final AtomicLong computeNanos = new AtomicLong();
    private final StepClock clock = new StepClock();
    private volatile String lastRejection;
    private volatile FrameFault pendingFault;
    private volatile int cachedSequences;
    private volatile long kvCacheBytes;
    private Arena sendArena = Arena.ofShared();
    /** Scratch of the step being computed (compute thread only). */
    private final StepArena stepArena = new StepArena();
    private final FrameCopies frameCopies = new FrameCopies();
    private MemorySegment sendBuffer = MemorySegment.NULL;

    private StageEngine(StageAssignment assignment, String workerId, OptModel loaded, OptModel base, OptModel model,
                        GpuLayers gpu, boolean deviceLinks, boolean deviceHead, boolean deviceSampling, boolean streamed, boolean restoredOnDevice,
                        int gptqSequences, String restoreProblem, long memoryShare,
                        ActorRef<Coordinator.Command> coordinator, ActorRef<StageWorker.Command> head, DataPlane dataPlane) {
        this.assignment = assignment;
        this.kvTokens = gpu == null ? Long.MAX_VALUE : gpu.kvTokens(memoryShare);
        this.gpu = gpu;
        this.deviceLinks = gpu != null && deviceLinks;
        this.deviceHead = gpu != null && deviceHead;
        this.deviceSampling = this.deviceHead && deviceSampling && gpu.hasLmHead();
        this.deviceRows = this.deviceSampling ? new SamplingRows(assignment.maxBatchTokens()) : null;
        this.deviceTokens = this.deviceSampling ? new int[assignment.maxBatchTokens()] : null;
        this.gptqSequences = gptqSequences;
        this.loaded = loaded;
        this.workerId = workerId;
        this.base = base;
        this.model = model;
        this.streamed = streamed;
        this.restored = model != base || restoredOnDevice;
        this.restoreProblem = restoreProblem;
        this.coordinator = coordinator;
        this.head = head;
        this.resident = new ResidentBatches(assignment.maxBatchTokens());
        CodecId codecId = CodecId.fromName(assignment.linkCodec());
        this.codec = needsPlan(codecId) ? LinkCodecs.forId(CodecId.FP16) : LinkCodecs.forId(codecId);
        int width = model.config().hiddenSize();
        this.sentMin = new float[width];
        this.sentMax = new float[width];
        java.util.Arrays.fill(sentMin, Float.POSITIVE_INFINITY);
        java.util.Arrays.fill(sentMax, Float.NEGATIVE_INFINITY);
        this.compute = Executors.newSingleThreadExecutor(
                Thread.ofPlatform().name("stage-" + assignment.stageIndex() + "-compute").daemon().factory());
        this.sender = assignment.outbound() == null ? null : dataPlane.sender(assignment.outbound());
        this.receiver = assignment.inbound() == null ? null
                : dataPlane.receive(assignment.inbound(), this::onFrame, this::onLinkError);
    }

    /** @param head the first stage's worker, for the last stage's sampled tokens; null on the first stage itself */
    static StageEngine start(StageAssignment assignment, WorkerSettings settings, DataPlane dataPlane,
                             ActorRef<Coordinator.Command> coordinator, ActorRef<StageWorker.Command> head) {
        LayerRange range = new LayerRange(assignment.firstLayer(), assignment.endLayer(), assignment.totalLayers());
        if (settings.cudaDevice() >= 0 && settings.streamLayers()) {
            return startStreaming(assignment, settings, range, dataPlane, coordinator, head);
        }
        OptModel loaded = OptModel.load(Path.of(assignment.checkpointDir()), range);
        OptModel base;
        try {
            base = loaded.withKvPrecision(KvPrecision.parse(assignment.kvCache()));
        } catch (RuntimeException e) {
            loaded.close();
            throw e;
        }
        OptModel model = base;
        GpuLayers gpu = null;
        String restoreProblem = null;
        StageQuantization quantization = assignment.quantization();
        try {
            if (quantization != null && quantization.restoreFile() != null) {
                try {
                    model = StageFile.load(Path.of(quantization.restoreFile()), base, identity(assignment), quantization.restoreCrc32c());
                    LOG.info("stage {}: restored {} layers [{}, {}) from {}", assignment.stageIndex(), quantization.recipe(),
                            assignment.firstLayer(), assignment.endLayer(), quantization.restoreFile());
                } catch (QuantStoreException e) {
                    restoreProblem = e.getMessage();
                    LOG.warn("stage {}: cannot restore the quantized stage: {}", assignment.stageIndex(), restoreProblem);
                }
            }
            gpu = settings.cudaDevice() < 0 ? null : openGpu(assignment, settings, model);
            return new StageEngine(assignment, settings.workerId(), loaded, base, model, gpu, settings.deviceLinkCodecs(),
                    settings.deviceLmHead(), settings.deviceSampling(), false, false,
                    settings.gptqSequences(), restoreProblem, settings.memoryBytes(), coordinator, head, dataPlane);
        } catch (RuntimeException e) {
            if (gpu != null) {
                gpu.close();
            }
            if (model != base) {
                model.close();
            }
            loaded.close();
            throw e;
        }
    }

    /**
     * A GPU worker with {@code host-weights = stream}: the layers go to the device one at a time — FP16 from the
     * checkpoint, or W8A8 rebuilt from the stage file the store saved, each on its FP32 layer read alone — and the
     * host keeps the stage's embeddings and head only. Such a stage cannot calibrate: a quantized recipe must be
     * restorable from the store, else the stage refuses to load and says so.
     */
    private static StageEngine startStreaming(StageAssignment assignment, WorkerSettings settings, LayerRange range,
                                              DataPlane dataPlane, ActorRef<Coordinator.Command> coordinator,
                                              ActorRef<StageWorker.Command> head) {
        int device = settings.cudaDevice();
        StageQuantization quantization = assignment.quantization();
        boolean quantized = quantization != null && !quantization.recipe().equals(QuantRecipe.FP32.name());
        String where = "stage " + assignment.stageIndex() + " on cuda:" + device + " streams its layers to the GPU "
                + "(bitrelay.worker.host-weights = stream)";
        if (quantized && quantization.restoreFile() == null) {
            throw new IllegalArgumentException(where + " and cannot calibrate " + quantization.recipe() + ": the quantization "
                    + "store has no saved stage for it; calibrate once with host-weights = keep (the store keeps the result), then stream");
        }
        KvPrecision kv = checkGpuKvCache(assignment, device);
        Path checkpoint = Path.of(assignment.checkpointDir());
        OptModel loadedHost = OptModel.loadWithoutLayers(checkpoint, range);
        OptModel host = loadedHost.withKvPrecision(kv);
        GpuLayers gpu = null;
        try (HfCheckpoint files = HfCheckpoint.open(checkpoint);
             StageFile.Reader saved = quantized ? StageFile.Reader.open(Path.of(quantization.restoreFile()), identity(assignment),
                     quantization.restoreCrc32c()) : null) {
            GpuStage.LayerSource fp32 = GpuStage.LayerSource.checkpoint(files, host.config(), range);
            GpuStage.LayerSource layers = saved == null ? fp32
                    : (local, arena) -> saved.restoreLayer(local, fp32.layer(local, arena), arena);
            gpu = GpuLayers.stream(device, settings.cuda(), host, quantized ? StageRecipe.W8A8 : StageRecipe.FP16, layers,
                    assignment.maxBatchTokens());
            LOG.info("stage {}: layers [{}, {}) streamed to {}{}", assignment.stageIndex(), assignment.firstLayer(),
                    assignment.endLayer(), gpu.describe(), quantized ? " (" + quantization.recipe() + " from " + quantization.restoreFile() + ")" : "");
            return new StageEngine(assignment, settings.workerId(), loadedHost, host, host, gpu, settings.deviceLinkCodecs(),
                    settings.deviceLmHead(), settings.deviceSampling(), true, quantized, settings.gptqSequences(), null, settings.memoryBytes(), coordinator,
                    head, dataPlane);
        } catch (RuntimeException e) {
            if (gpu != null) {
                gpu.close();
            }
            loadedHost.close();
            throw e instanceof QuantStoreException ? new IllegalArgumentException(where + ": " + e.getMessage(), e) : e;
        }
    }

    /** The KV precision a GPU stage serves: fp32 (an FP16 cache on the GPU) or int8; 4 and 3 bits are refused by name. */
    private static KvPrecision checkGpuKvCache(StageAssignment assignment, int device) {
        KvPrecision precision = KvPrecision.parse(assignment.kvCache());
        try {
            KvCacheFormat.of(precision);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("stage " + assignment.stageIndex() + " on cuda:" + device
                    + ": bitrelay.quantization.kv-cache = " + assignment.kvCache() + ": " + e.getMessage(), e);
        }
        return precision;
    }

    private static GpuLayers openGpu(StageAssignment assignment, WorkerSettings settings, OptModel model) {
        int device = settings.cudaDevice();
        checkGpuKvCache(assignment, device);
        GpuLayers gpu = GpuLayers.open(device, settings.cuda(), model, assignment.maxBatchTokens());
        LOG.info("stage {}: layers [{}, {}) run {}", assignment.stageIndex(), assignment.firstLayer(), assignment.endLayer(),
                gpu.describe());
        return gpu;
    }

    /** What this stage's file must have been made for: the recipe options it uses count, as the coordinator's store compares. */
    private static StageFile.Identity identity(StageAssignment assignment) {
        StageQuantization q = assignment.quantization();
        return new StageFile.Identity(q.fingerprint(), q.recipe(), q.alpha(), q.options().effectiveFor(q.quantRecipe()),
                assignment.firstLayer(), assignment.endLayer());
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

    static boolean needsPlan(CodecId id) {
        return id == CodecId.INT4_RPTQ || id == CodecId.INT3_RPTQ;
    }

    int stageIndex() {
        return assignment.stageIndex();
    }

    long weightBytes() {
        if (gpu != null) {
            return gpu.weightBytes();
        }
        return model.config().layerParameters() * (assignment.endLayer() - assignment.firstLayer()) * Float.BYTES;
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
        compute.execute(() -> resident.drop(batchId));
    }

    /** Confirms the members that left, then computes the step the event made, if any; compute thread. */
    private void runNext(java.util.function.Supplier<ResidentBatches.Next> event, long batchId, long arrived) {
        guarded(batchId, () -> {
            ResidentBatches.Next next = event.get();
            if (next.left().length > 0) {
                coordinator.tell(new Coordinator.SequencesLeft(next.batchId(), next.left()));
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
                KvCache cache = caches.remove(id);
                if (cache != null) {
                    cache.close();
                }
                if (gpu != null) {
                    gpu.release(id);
                }
                samplings.remove(id);
            }
            updateCacheGauges();
        });
    }

    void reportLinkRanges(ActorRef<StageWorker.LinkRanges> replyTo) {
        compute.execute(() -> replyTo.tell(new StageWorker.LinkRanges(assignment.stageIndex(), sentMin.clone(), sentMax.clone())));
    }

    /** Switches the outbound codec (sender) or the frame reader (receiver) to the link's cluster plan. */
    void useLinkPlan(ClusterPlan plan, boolean staticRanges, boolean outbound, ActorRef<Coordinator.Command> replyTo) {
        RptqLinkCodec.Ranges ranges = staticRanges ? RptqLinkCodec.Ranges.STATIC : RptqLinkCodec.Ranges.DYNAMIC;
        compute.execute(() -> {
            if (outbound) {
                codec = LinkCodecs.forId(CodecId.fromName(assignment.linkCodec()), plan, ranges);
            } else {
                reader = new LinkFrameReader(LinkCodecs.all(plan, ranges));
            }
            LOG.info("stage {}: {} link uses RPTQ plan {} ({} clusters)", assignment.stageIndex(),
                    outbound ? "outbound" : "inbound", Integer.toHexString(plan.fingerprint()), plan.clusters());
            replyTo.tell(new Coordinator.LinkPlanApplied(assignment.stageIndex(), outbound));
        });
    }

    void beginRecipeCalibration(ActorRef<Coordinator.Command> replyTo) {
        if (streamed) {
            replyTo.tell(new Coordinator.StepFailed(-1, assignment.stageIndex(), "stage " + assignment.stageIndex()
                    + " streamed its layers to the GPU and holds none on the host to calibrate (bitrelay.worker.host-weights = stream)"));
            return;
        }
        compute.execute(() -> {
            StageQuantization quantization = assignment.quantization();
            // The coordinator's estimator (bitrelay.quantization.activation-ranges), so the ranges are those eval measures.
            recipeCollector = new CalibrationCollector(quantization == null ? RecipeOptions.DEFAULT.activationRanges()
                    : quantization.options().activationRanges());
            if (gptqInputs != null) {
                gptqInputs.close();
            }
            gptqInputs = quantization != null && QuantRecipe.byName(quantization.recipe()).gptq()
                    ? new GptqInputs(model.config().hiddenSize(), gptqSequences) : null;
            replyTo.tell(new Coordinator.RecipeCalibrationReady(assignment.stageIndex()));
        });
    }

    /** Sends the recorded statistics in chunks small enough for one Artery frame each, then stops recording. */
    void reportCalibration(ActorRef<StatsChunk> replyTo) {
        compute.execute(() -> {
            CalibrationCollector collector = recipeCollector == null ? new CalibrationCollector() : recipeCollector;
            recipeCollector = null;
            CalibrationStats stats = collector.stats(new CalibrationStats.Source("stage " + assignment.stageIndex(), "", 0, 0));
            List<StatsChunk> chunks = StatsChunks.split(stats, layer -> true, assignment.stageIndex(), StatsChunks.MAX_CHANNELS);
            chunks.forEach(replyTo::tell);
            LOG.info("stage {}: sent calibration statistics of {} (layer, site) entries in {} chunks", assignment.stageIndex(),
                    stats.entries().size(), chunks.size());
        });
    }

    /** Builds the stage {@code plan} describes from the FP32 stage, serves with it, saves it when asked; acknowledged. */
    void applyPlan(QuantPlan plan, String saveFile, ActorRef<Coordinator.Command> replyTo) {
        if (streamed) {
            replyTo.tell(new Coordinator.QuantPlanApplied(assignment.stageIndex(), null, 0, 0, null, "stage " + assignment.stageIndex()
                    + " streamed its layers to the GPU and holds none on the host to quantize (bitrelay.worker.host-weights = stream)"));
            return;
        }
        compute.execute(() -> {
            long start = System.nanoTime();
            OptModel quantized;
            try {
                if (plan.recipe().gptq()) {
                    if (gptqInputs == null) {
                        throw new IllegalStateException(plan.recipe().name() + " rounds with GPTQ, but this stage kept no "
                                + "calibration inputs (did recipe calibration run on it?)");
                    }
                    LOG.info("stage {}: GPTQ layer by layer over {} calibration sequences ({} MiB kept)",
                            assignment.stageIndex(), gptqInputs.sequences(), gptqInputs.bytes() >> 20);
                    try {
                        quantized = gptqInputs.quantize(base, plan);
                    } finally {
                        gptqInputs.close();
                        gptqInputs = null;
                    }
                } else {
                    quantized = RecipeApplier.apply(base, plan);
                }
                if (gpu != null) {
                    try {
                        gpu.rebuild(quantized);
                    } catch (RuntimeException e) {
                        quantized.close();
                        throw e;
                    }
                }
            } catch (RuntimeException e) {
                String reason = "stage " + assignment.stageIndex() + ": cannot build " + plan.recipe().name() + ": " + e.getMessage();
                LOG.error(reason, e);
                replyTo.tell(new Coordinator.QuantPlanApplied(assignment.stageIndex(), null, 0, 0, null, reason));
                return;
            }
            if (model != base) {
                model.close();
            }
            model = quantized;
            LOG.info("stage {}: built {} (α = {}) for layers [{}, {}) in {} ms", assignment.stageIndex(), plan.recipe().name(),
                    plan.alpha(), assignment.firstLayer(), assignment.endLayer(), (System.nanoTime() - start) / 1_000_000);
            if (saveFile == null) {
                replyTo.tell(new Coordinator.QuantPlanApplied(assignment.stageIndex(), null, 0, 0, null, null));
                return;
            }
            try {
                StageFile.Written written = StageFile.save(Path.of(saveFile), base, quantized, identity(assignment));
                LOG.info("stage {}: saved the quantized stage to {} ({} bytes)", assignment.stageIndex(), saveFile, written.bytes());
                replyTo.tell(new Coordinator.QuantPlanApplied(assignment.stageIndex(), saveFile, written.bytes(), written.crc32c(), null, null));
            } catch (RuntimeException e) {
                String problem = "cannot save " + saveFile + ": " + e.getMessage();
                LOG.warn("stage {}: {}", assignment.stageIndex(), problem);
                replyTo.tell(new Coordinator.QuantPlanApplied(assignment.stageIndex(), null, 0, 0, problem, null));
            }
        });
    }

    void injectFault(FrameFault fault) {
        pendingFault = fault;
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
            CalibrationCollector collector = batch.calibration() ? recipeCollector : null;
            MemorySegment hidden = (collector != null ? base : model).embed(tokens, starts, step);
            if (deviceLinks && !batch.calibration()) {
                gpu.load(hidden, layout.tokens());
                clock.lap(StepPhase.INPUT);
                gpu.runOnDevice(layout.entries());
                clock.lap(StepPhase.LAYERS);
                finishOnDevice(batch.batchId(), batch.step(), layout, step, start);
                return;
            }
            clock.lap(StepPhase.INPUT);
            runLayers(layout, tokens, batch.calibration(), collector, hidden, step);
            clock.lap(StepPhase.LAYERS);
            finish(batch.batchId(), batch.step(), batch.calibration(), layout, hidden, step, start);
        }
    }

    /**
     * Runs the stage's layers over {@code hidden} in place: on the GPU when the worker has one, except while the
     * recipe is being calibrated (the CPU's FP32 stage records the activations); {@code tokens} is null past the
     * first stage.
     */
    private void runLayers(BatchLayout layout, List<int[]> tokens, boolean calibration, CalibrationCollector collector,
                           MemorySegment hidden, Arena step) {
        if (gpu != null && collector == null) {
            gpu.run(layout.entries(), calibration, hidden);
            return;
        }
        List<SequenceChunk> chunks = new ArrayList<>();
        List<KvCache> throwaway = new ArrayList<>();
        try {
            for (int i = 0; i < layout.entries().size(); i++) {
                BatchLayout.Entry entry = layout.entries().get(i);
                int[] chunkTokens = tokens != null ? tokens.get(i) : new int[entry.tokenCount()];
                chunks.add(new SequenceChunk(chunkTokens, calibration ? throwawayCache(throwaway) : cacheFor(entry)));
            }
            if (collector != null && gptqInputs != null) {
                gptqInputs.record(layout.entries(), hidden);
            }
            (collector != null ? base : model).runLayers(chunks, hidden, step, collector);
        } finally {
            throwaway.forEach(KvCache::close);
        }
    }

    /** Calibration sequences run whole in one step and are forgotten: their caches never join the map. */
    private KvCache throwawayCache(List<KvCache> throwaway) {
        KvCache cache = model.newCache();
        throwaway.add(cache);
        return cache;
    }

    private void computeFrame(MemorySegment frame) {
        long claimedBatch = claimedBatchId(frame);
        LinkFrameReader validated;
        try {
            validated = reader.wrap(frame);
            if (validated.targetStage() != assignment.stageIndex() || validated.width() != model.config().hiddenSize()) {
                throw new FrameException(FrameException.Reason.BAD_SIZES, "frame for stage " + validated.targetStage()
                        + " of width " + validated.width() + " reached stage " + assignment.stageIndex() + " of width "
                        + model.config().hiddenSize());
            }
        } catch (FrameException e) {
            rejectedFrames.incrementAndGet();
            String reason = "frame on " + assignment.inbound().describe() + " rejected: " + e.getMessage();
            lastRejection = reason;
            LOG.warn("stage {}: {}", assignment.stageIndex(), reason);
            coordinator.tell(new Coordinator.StepFailed(claimedBatch, assignment.stageIndex(), reason));
            return;
        }
        long batchId = validated.batchId();
        boolean calibration = (validated.flags() & FLAG_CALIBRATION) != 0;
        guarded(batchId, () -> {
            BatchLayout layout = validated.batchLayout();
            long start = System.nanoTime();
            try (Arena step = stepArena) {
                if (deviceLinks && !calibration && gpu.codesOnDevice(validated.codec())) {
                    gpu.receive(validated);
                    clock.lap(StepPhase.INPUT);
                    gpu.runOnDevice(layout.entries());
                    clock.lap(StepPhase.LAYERS);
                    finishOnDevice(batchId, validated.step(), layout, step, start);
                    return;
                }
                MemorySegment hidden = step.allocate((long) validated.rows() * validated.width() * Float.BYTES, 64);
                validated.decodeInto(hidden);
                clock.lap(StepPhase.INPUT);
                runLayers(layout, null, calibration, calibration ? recipeCollector : null, hidden, step);
                clock.lap(StepPhase.LAYERS);
                finish(batchId, validated.step(), calibration, layout, hidden, step, start);
            }
        });
    }

    /** Sends the hidden states on, or, on the last stage, samples each sequence's next token. */
    private void finish(long batchId, int stepNumber, boolean calibration, BatchLayout layout, MemorySegment hidden, Arena step,
                        long startNanos) {
        if (calibration) {
            recordCompute(startNanos);
            if (assignment.isLast()) {
                coordinator.tell(new Coordinator.CalibrationStepDone(batchId));
            } else {
                if (recipeCollector == null) { // recipe calibration runs the FP32 stage: not what the link will carry
                    recordSentRanges(hidden, layout.tokens());
                }
                send(batchId, stepNumber, true, layout, hidden);
            }
            return;
        }
        if (assignment.isLast()) {
            StepOutcome outcome = sampleOrScore(layout, hidden, step);
            coordinator.tell(new Coordinator.StepCompleted(batchId, outcome.sequenceIds, outcome.tokens, outcome.scores));
            if (head == null) {
                sampled(batchId, outcome.sequenceIds, outcome.tokens); // queued: a join or close waiting goes first
            } else {
                head.tell(new StageWorker.StepSampled(batchId, outcome.sequenceIds, outcome.tokens));
            }
        } else {
            send(batchId, stepNumber, false, layout, hidden);
        }
        clock.lap(StepPhase.OUTPUT);
        recordCompute(startNanos);
        updateCacheGauges();
    }

    /** What the last stage reports for one micro-batch; {@code scores} stays null when no sequence asked for any. */
    private record StepOutcome(int[] sequenceIds, int[] tokens, TokenScore[][] scores) {
    }

    /**
     * Per sequence: a scored prompt chunk gets the log-probability of each row's next prompt token (and
     * top alternatives), computed here and never leaving as logits; any other sequence samples its next
     * token from its last row (with that token's score when it asked for logprobs).
     */
    private StepOutcome sampleOrScore(BatchLayout layout, MemorySegment hidden, Arena step) {
        List<BatchLayout.Entry> entries = layout.entries();
        int[] sequenceIds = new int[entries.size()];
        int[] tokens = new int[entries.size()];
        TokenScore[][] scores = new TokenScore[entries.size()][];
        boolean anyScores = false;
        List<Integer> sampled = new ArrayList<>();
        int[] lastRows = new int[entries.size()];
        int row = 0;
        for (int i = 0; i < entries.size(); i++) {
            BatchLayout.Entry entry = entries.get(i);
            sequenceIds[i] = entry.sequenceId();
            if (entry.scoresPrompt()) {
                scores[i] = PromptScoring.score(model, hidden, row, entry.targets(), entry.logprobs());
                tokens[i] = -1;
                anyScores = true;
            } else if (entry.partialPrompt()) {
                if (entry.hasSampling()) {
                    samplingFor(entry); // its sampler starts with the first chunk; the first draw comes with the last
                }
                tokens[i] = -1;
            } else {
                lastRows[sampled.size()] = row + entry.tokenCount() - 1;
                sampled.add(i);
            }
            row += entry.tokenCount();
        }
        if (!sampled.isEmpty()) {
            int[] rows = java.util.Arrays.copyOf(lastRows, sampled.size());
            if (samplesOnDevice(layout)) {
                sampleOnDevice(entries, sampled, rows, tokens);
            } else {
                // the device's rows are this step's whenever the stage ran on the GPU (runLayers and runOnDevice alike)
                float[][] logits = headOnDevice(layout) ? gpu.logits(rows) : model.logits(hidden, rows, step);
                clock.lap(StepPhase.HEAD);
                for (int j = 0; j < sampled.size(); j++) {
                    int i = sampled.get(j);
                    BatchLayout.Entry entry = entries.get(i);
                    tokens[i] = samplingFor(entry).next(logits[j]);
                    if (entry.logprobs() >= 0) {
                        scores[i] = new TokenScore[]{LogSoftmax.score(logits[j], tokens[i], entry.logprobs())};
                        anyScores = true;
                    }
                }
            }
        }
        clock.lap(StepPhase.SAMPLE);
        return new StepOutcome(sequenceIds, tokens, anyScores ? scores : null);
    }

    /** Whether the device picks this step's tokens: its head runs there and no sequence wants log-probabilities. */
    private boolean samplesOnDevice(BatchLayout layout) {
        return deviceSampling && headOnDevice(layout) && layout.entries().stream().allMatch(e -> e.logprobs() < 0);
    }

    /** Final LayerNorm, head and sampling on the device for the {@code sampled} entries' last {@code rows}. */
    private void sampleOnDevice(List<BatchLayout.Entry> entries, List<Integer> sampled, int[] rows, int[] tokens) {
        deviceRows.clear();
        for (int i : sampled) {
            SequenceSampling sampling = samplingFor(entries.get(i));
            deviceRows.add(sampling.params(), sampling.drawOnDevice());
        }
        gpu.sample(rows, deviceRows, deviceTokens);
        clock.lap(StepPhase.HEAD);
        for (int j = 0; j < sampled.size(); j++) {
            tokens[sampled.get(j)] = deviceTokens[j];
        }
    }

    /**
     * Whether this step's sampled rows get their logits from the GPU: a GPU stage with the head, and no sequence
     * scoring its prompt (that needs every row's logits, so the rows come to the host and the CPU head serves).
     */
    private boolean headOnDevice(BatchLayout layout) {
        return deviceHead && gpu.hasLmHead() && layout.entries().stream().noneMatch(BatchLayout.Entry::scoresPrompt);
    }

    private void recordSentRanges(MemorySegment hidden, int rows) {
        int width = sentMin.length;
        for (int row = 0; row < rows; row++) {
            for (int channel = 0; channel < width; channel++) {
                float value = hidden.getAtIndex(ValueLayout.JAVA_FLOAT, (long) row * width + channel);
                sentMin[channel] = Math.min(sentMin[channel], value);
                sentMax[channel] = Math.max(sentMax[channel], value);
            }
        }
    }

    /** Calibration frames always go as FP16 and are flagged, so the receiver treats them as calibration too. */
    private void send(long batchId, int stepNumber, boolean calibration, BatchLayout layout, MemorySegment hidden) {
        int rows = layout.tokens();
        int width = model.config().hiddenSize();
        LinkCodec frameCodec = calibration ? LinkCodecs.forId(CodecId.FP16) : codec;
        long frameBytes = LinkFrame.frameBytes(frameCodec, layout.encodedBytes(), rows, width);
        ensureSendBuffer(frameBytes);
        long length = header(writer.wrap(sendBuffer), batchId, stepNumber, calibration)
                .encode(frameCodec, layout, hidden, rows, width);
        dispatch(batchId, calibration, sendBuffer, length);
    }

    /**
     * The end of a step whose rows stayed on the GPU: the last stage brings them to the host for its LM head;
     * the others encode the outbound frame on the device, or, for a codec the kernels cannot run, on the host.
     */
    private void finishOnDevice(long batchId, int stepNumber, BatchLayout layout, Arena step, long startNanos) {
        LinkCodec frameCodec = codec;
        if (assignment.isLast() || !gpu.codesOnDevice(frameCodec)) {
            MemorySegment hidden = MemorySegment.NULL; // the device's LM head alone reads the rows
            if (!assignment.isLast() || !headOnDevice(layout)) {
                hidden = step.allocate((long) layout.tokens() * model.config().hiddenSize() * Float.BYTES, 64);
                gpu.store(hidden, layout.tokens());
                clock.lap(assignment.isLast() ? StepPhase.HEAD : StepPhase.OUTPUT);
            }
            finish(batchId, stepNumber, false, layout, hidden, step, startNanos);
            return;
        }
        long frameBytes = LinkFrame.frameBytes(frameCodec, layout.encodedBytes(), layout.tokens(), model.config().hiddenSize());
        MemorySegment frame = gpu.encodeFrame(frameCodec, layout, frameBytes,
                w -> header(w, batchId, stepNumber, false), writer);
        dispatch(batchId, false, frame, frame.byteSize());
        clock.lap(StepPhase.OUTPUT);
        recordCompute(startNanos);
        updateCacheGauges();
    }

    private LinkFrameWriter header(LinkFrameWriter wrapped, long batchId, int stepNumber, boolean calibration) {
        return wrapped.batchId(batchId).step(stepNumber).stages(assignment.stageIndex(), assignment.stageIndex() + 1)
                .flags(calibration ? FLAG_CALIBRATION : 0);
    }

    /** Counts a written frame, applies an injected fault to it, and sends it on. */
    private void dispatch(long batchId, boolean calibration, MemorySegment buffer, long length) {
        if (!calibration) {
            outboundStats.recordFrame(writer);
        }
        FrameFault fault = pendingFault;
        if (fault != null) {
            pendingFault = null;
            length = fault.apply(buffer, length, LinkFrame.VERSION_OFFSET);
            LOG.warn("stage {}: injected fault {} into micro-batch {}", assignment.stageIndex(), fault, batchId);
        }
        sender.send(buffer, length);
    }

    private void ensureSendBuffer(long bytes) {
        if (sendBuffer.byteSize() >= bytes) {
            return;
        }
        sendArena.close();
        sendArena = Arena.ofShared();
        sendBuffer = sendArena.allocate(Math.max(bytes, 2 * sendBuffer.byteSize()), 64);
    }

    private KvCache cacheFor(BatchLayout.Entry entry) {
        KvCache cache = caches.get(entry.sequenceId());
        if (CacheContinuity.startsSequence(entry, cache == null ? -1 : cache.length(), "stage " + assignment.stageIndex())) {
            cache = model.newCache();
            caches.put(entry.sequenceId(), cache);
        }
        return cache;
    }

    private SequenceSampling samplingFor(BatchLayout.Entry entry) {
        if (entry.sampling() != null) {
            samplings.put(entry.sequenceId(), new SequenceSampling(entry.sampling()));
        }
        SequenceSampling sampling = samplings.get(entry.sequenceId());
        if (sampling == null) {
            throw new IllegalStateException("no sampling parameters for sequence " + entry.sequenceId());
        }
        return sampling;
    }

    private void guarded(long batchId, Runnable work) {
        try {
            work.run();
        } catch (RuntimeException e) {
            String reason = e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
            LOG.warn("stage {}: micro-batch {} failed: {}", assignment.stageIndex(), batchId, reason, e);
            coordinator.tell(new Coordinator.StepFailed(batchId, assignment.stageIndex(), reason));
        }
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
        cachedSequences = caches.size() + (gpu == null ? 0 : gpu.sequenceCount());
        long bytes = gpu == null ? 0 : gpu.cacheBytes();
        for (KvCache cache : caches.values()) {
            bytes += cache.bytes();
        }
        kvCacheBytes = bytes;
    }

    // ---- reporting and shutdown -----------------------------------------------------------------------------

    StageStats stats() {
        StageStats.LinkCounters outbound = null;
        if (assignment.outbound() != null) {
            LinkStats.Snapshot s = outboundStats.snapshot();
            outbound = new StageStats.LinkCounters(assignment.stageIndex(), assignment.stageIndex() + 1, codec.id().codecName(),
                    s.frames(), s.tokens(), s.payloadBytes(), s.wireBytes(), s.fp16WireBytes(), sender.backPressureEvents());
        }
        return new StageStats(assignment.stageIndex(), workerId, assignment.firstLayer(), assignment.endLayer(), outbound,
                rejectedFrames.get(), lastRejection, cachedSequences, kvCacheBytes, steps.get(), computeNanos.get(), clock.snapshot());
    }

    void shutdown() {
        compute.shutdownNow();
        try {
            compute.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        closeQuietly(receiver);
        if (sender != null) {
            sender.close();
        }
        caches.values().forEach(KvCache::close);
        if (gptqInputs != null) {
            gptqInputs.close();
        }
        caches.clear();
        if (gpu != null) {
            closeQuietly(gpu);
        }
        sendArena.close();
        stepArena.release();
        frameCopies.close();
        if (model != base) {
            model.close();
        }
        loaded.close();
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
