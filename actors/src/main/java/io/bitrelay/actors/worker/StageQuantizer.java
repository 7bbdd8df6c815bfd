package io.bitrelay.actors.worker;

import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.actors.pipeline.StageQuantization;
import io.bitrelay.actors.pipeline.StatsChunk;
import io.bitrelay.actors.pipeline.StatsChunks;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.quant.CalibrationCollector;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.QuantPlan;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RecipeApplier;
import io.bitrelay.runtime.quant.RecipeOptions;
import io.bitrelay.runtime.quant.store.StageFile;
import io.bitrelay.runtime.wire.BatchLayout;

import org.apache.pekko.actor.typed.ActorRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;

/**
 * A stage's side of quantizing the pipeline (the coordinator's RecipeCalibration drives it): while the recipe is
 * calibrated, calibration steps run on the CPU's FP32 stage whatever backend serves (the GPU stage has no activation
 * observers), every quantization point recorded, and for a GPTQ recipe the stage's input rows kept; then the
 * coordinator's plan is built from the FP32 stage, served (rebuilt on the GPU when there is one) and saved when
 * asked. A stage that streamed its layers to the GPU holds none on the host and can do neither. Compute thread only,
 * except {@link #hostLayersProblem}.
 */
final class StageQuantizer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StageQuantizer.class);

    private final StageAssignment assignment;
    private final StageModels models;
    private final StageBackend backend;
    /** The layers were streamed to the GPU: the host holds none, so this stage cannot calibrate or quantize. */
    private final boolean streamed;
    private final int gptqSequences;
    /** Records every quantization point while the coordinator calibrates the recipe. */
    private CalibrationCollector recipeCollector;
    /** GPTQ recipes: this stage's calibration inputs, kept here until the plan (GPTQ rounds layer by layer over them). */
    private GptqInputs gptqInputs;

    StageQuantizer(StageAssignment assignment, StageModels models, StageBackend backend, boolean streamed, int gptqSequences) {
        this.assignment = assignment;
        this.models = models;
        this.backend = backend;
        this.streamed = streamed;
        this.gptqSequences = gptqSequences;
    }

    /** Why this stage cannot {@code what} ("calibrate", "quantize"), or null when it can; any thread. */
    String hostLayersProblem(String what) {
        return streamed ? "stage " + assignment.stageIndex() + " streamed its layers to the GPU and holds none on the host to "
                + what + " (bitrelay.worker.host-weights = stream)" : null;
    }

    /** Calibration batches from now on run on the FP32 stage and are recorded; acknowledged. */
    void begin(ActorRef<StageWorker.Reply> replyTo) {
        StageQuantization quantization = assignment.quantization();
        // The coordinator's estimator (bitrelay.quantization.activation-ranges), so the ranges are those eval measures.
        recipeCollector = new CalibrationCollector(quantization == null ? RecipeOptions.DEFAULT.activationRanges()
                : quantization.options().activationRanges());
        if (gptqInputs != null) {
            gptqInputs.close();
        }
        gptqInputs = quantization != null && QuantRecipe.byName(quantization.recipe()).gptq()
                ? new GptqInputs(models.serving().config().hiddenSize(), gptqSequences) : null;
        replyTo.tell(new StageWorker.RecipeCalibrationReady(assignment.stageIndex()));
    }

    /** True while calibration steps are the recipe's (between {@link #begin} and {@link #report}). */
    boolean recording() {
        return recipeCollector != null;
    }

    /**
     * Runs the FP32 stage over a recipe calibration step's host rows in place, on throwaway caches, recording every
     * quantization point; a GPTQ recipe keeps the rows as they came in first. {@code tokens} is null past the first stage.
     */
    void runLayers(BatchLayout layout, List<int[]> tokens, MemorySegment hidden, Arena step) {
        try (ThrowawayCaches throwaway = new ThrowawayCaches(models.serving())) {
            List<SequenceChunk> chunks = CpuStageBackend.chunks(layout, tokens, throwaway::newCache);
            if (gptqInputs != null) {
                gptqInputs.record(layout.entries(), hidden);
            }
            models.base().runLayers(chunks, hidden, step, recipeCollector);
        }
    }

    /** Sends the recorded statistics in chunks small enough for one Artery frame each, then stops recording. */
    void report(ActorRef<StatsChunk> replyTo) {
        CalibrationCollector collector = recipeCollector == null ? new CalibrationCollector() : recipeCollector;
        recipeCollector = null;
        CalibrationStats stats = collector.stats(new CalibrationStats.Source("stage " + assignment.stageIndex(), "", 0, 0));
        List<StatsChunk> chunks = StatsChunks.split(stats, layer -> true, assignment.stageIndex(), StatsChunks.MAX_CHANNELS);
        chunks.forEach(replyTo::tell);
        LOG.info("stage {}: sent calibration statistics of {} (layer, site) entries in {} chunks", assignment.stageIndex(),
                stats.entries().size(), chunks.size());
    }

    /** Builds the stage {@code plan} describes from the FP32 stage, serves with it, saves it when asked; acknowledged. */
    void applyPlan(QuantPlan plan, String saveFile, ActorRef<StageWorker.Reply> replyTo) {
        long start = System.nanoTime();
        OptModel quantized;
        try {
            quantized = build(plan);
            try {
                backend.rebuild(quantized);
            } catch (RuntimeException e) {
                quantized.close();
                throw e;
            }
        } catch (RuntimeException e) {
            String reason = "stage " + assignment.stageIndex() + ": cannot build " + plan.recipe().name() + ": " + e.getMessage();
            LOG.error(reason, e);
            replyTo.tell(new StageWorker.QuantPlanApplied(assignment.stageIndex(), null, 0, 0, null, reason));
            return;
        }
        models.serve(quantized);
        LOG.info("stage {}: built {} (α = {}) for layers [{}, {}) in {} ms", assignment.stageIndex(), plan.recipe().name(),
                plan.alpha(), assignment.firstLayer(), assignment.endLayer(), (System.nanoTime() - start) / 1_000_000);
        if (saveFile == null) {
            replyTo.tell(new StageWorker.QuantPlanApplied(assignment.stageIndex(), null, 0, 0, null, null));
            return;
        }
        try {
            StageFile.Written written = StageFile.save(Path.of(saveFile), models.base(), quantized, StageLoader.identity(assignment));
            LOG.info("stage {}: saved the quantized stage to {} ({} bytes)", assignment.stageIndex(), saveFile, written.bytes());
            replyTo.tell(new StageWorker.QuantPlanApplied(assignment.stageIndex(), saveFile, written.bytes(), written.crc32c(), null, null));
        } catch (RuntimeException e) {
            String problem = "cannot save " + saveFile + ": " + e.getMessage();
            LOG.warn("stage {}: {}", assignment.stageIndex(), problem);
            replyTo.tell(new StageWorker.QuantPlanApplied(assignment.stageIndex(), null, 0, 0, problem, null));
        }
    }

    /** The quantized stage, from the FP32 one: GPTQ rounds layer by layer over the kept inputs (freed after). */
    private OptModel build(QuantPlan plan) {
        if (!plan.recipe().gptq()) {
            return RecipeApplier.apply(models.base(), plan);
        }
        if (gptqInputs == null) {
            throw new IllegalStateException(plan.recipe().name() + " rounds with GPTQ, but this stage kept no "
                    + "calibration inputs (did recipe calibration run on it?)");
        }
        LOG.info("stage {}: GPTQ layer by layer over {} calibration sequences ({} MiB kept)",
                assignment.stageIndex(), gptqInputs.sequences(), gptqInputs.bytes() >> 20);
        try {
            return gptqInputs.quantize(models.base(), plan);
        } finally {
            gptqInputs.close();
            gptqInputs = null;
        }
    }

    @Override
    public void close() {
        if (gptqInputs != null) {
            gptqInputs.close();
        }
    }
}
