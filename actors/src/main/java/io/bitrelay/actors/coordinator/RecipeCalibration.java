package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.pipeline.StatsChunk;
import io.bitrelay.actors.pipeline.StatsChunks;
import io.bitrelay.actors.worker.StageWorker;
import io.bitrelay.runtime.eval.TokenWindows;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.ChannelStats;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.quant.QuantPlan;
import io.bitrelay.runtime.quant.QuantPlanner;
import io.bitrelay.runtime.quant.store.SavedRecipe;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * The start-up phase that turns the FP32 stages into the configured recipe's:
 * <ol>
 *   <li>every stage starts recording ({@code BeginRecipeCalibration}, acknowledged, so no calibration frame
 *       can overtake it);</li>
 *   <li>calibration sequences stream through the pipeline as calibration micro-batches ({@link CalibrationFeed}),
 *       each stage running its FP32 layers with a {@code CalibrationCollector} of the configured estimator (each
 *       sequence one batch, as in {@code bitrelay eval}); a progress bar goes to the log;</li>
 *   <li>each stage sends its statistics back in {@link StatsChunk}s (Artery frame size);</li>
 *   <li>the coordinator makes the plan ({@link QuantPlanner}, statistics only), saves the statistics to the
 *       store, and sends each stage its part (PlanBegin, PlanChunk…, PlanReorder…, PlanEnd);</li>
 *   <li>each stage builds its layers ({@code RecipeApplier.apply}), saves them to the store, acknowledges;</li>
 *   <li>the recipe is written to the store last.</li>
 * </ol>
 * Recipes that need no statistics (per-token W8A8) skip straight to sending plans.
 */
final class RecipeCalibration {
    private static final long FIRST_BATCH_ID = -1_000_000_000L; // apart from link calibration's and the scheduler's
    /** Its own logger, at INFO by default (simplelogger.properties): the progress of calibration is worth seeing. */
    private static final Logger LOG = LoggerFactory.getLogger(RecipeCalibration.class);

    /** One stage as this phase sees it. */
    record StageRef(ActorRef<StageWorker.Command> worker, int firstLayer, int endLayer) {
    }

    private final ActorContext<Coordinator.Command> context;
    private final TimerScheduler<Coordinator.Command> timers;
    private final CoordinatorSettings settings;
    private final QuantizationSettings quantization;
    private final OptConfig model;
    private final List<StageRef> stages;
    private final QuantizationStore store;
    private final PhaseHost host;
    private final long startNanos = System.nanoTime();
    private double calibrationSeconds;
    private int sequenceCount;
    private int sequenceTokens;

    RecipeCalibration(ActorContext<Coordinator.Command> context, TimerScheduler<Coordinator.Command> timers, CoordinatorSettings settings,
                      OptConfig model, List<StageRef> stages, QuantizationStore store, PhaseHost host) {
        this.context = context;
        this.timers = timers;
        this.settings = settings;
        this.quantization = settings.quantization();
        this.model = model;
        this.stages = List.copyOf(stages);
        this.store = store;
        this.host = host;
    }

    /** @param next the behaviour once every stage serves the recipe */
    Behavior<Coordinator.Command> start(Supplier<Behavior<Coordinator.Command>> next) {
        store.forgetRecipe(LOG);
        if (!quantization.recipe().needsCalibration()) {
            LOG.info("{} needs no calibration: sending the plan", quantization.recipe().name());
            return sendPlan(QuantPlanner.plan(quantization.recipe(), null, quantization.alpha()), next);
        }
        List<int[]> sequences;
        try {
            sequences = sequences();
        } catch (RuntimeException e) {
            return host.fail("recipe calibration: " + e.getMessage());
        }
        sequenceCount = sequences.size();
        sequenceTokens = sequences.getFirst().length;
        stages.forEach(stage -> stage.worker().tell(new StageWorker.BeginRecipeCalibration(host.replies())));
        LOG.info("calibrating {} (α = {}; {}) through the pipeline: {} sequences × {} tokens of {}", quantization.recipe().name(),
                quantization.alpha(), quantization.options().describe(), sequences.size(), sequenceTokens, sourceName());
        CalibrationFeed feed = new CalibrationFeed(sequences, quantization.batchSequences(), stages.size() + 1, FIRST_BATCH_ID,
                stages.getFirst().worker(), timers, settings.stepTimeout(),
                new LoggedProgress(LOG, "calibrate " + quantization.recipe().name(), "sequences", 2_000));
        return calibrating(feed, next);
    }

    private Behavior<Coordinator.Command> calibrating(CalibrationFeed feed, Supplier<Behavior<Coordinator.Command>> next) {
        ActorRef<StatsChunk> chunkAdapter = context.messageAdapter(StatsChunk.class, Coordinator.CalibrationChunkArrived::new);
        int[] ready = {0};
        StatsChunks.Assembler[] assemblers = new StatsChunks.Assembler[stages.size()];
        for (int i = 0; i < assemblers.length; i++) {
            assemblers[i] = new StatsChunks.Assembler();
        }
        ReplyRoutes replies = ReplyRoutes.of(StageWorker.RecipeCalibrationReady.class, m -> {
                    if (++ready[0] == stages.size() && feed.start()) {
                        return host.fail("recipe calibration has no sequences");
                    }
                    return Behaviors.same();
                })
                .and(StageWorker.CalibrationStepDone.class, m -> {
                    if (feed.done(m.batchId())) {
                        calibrationSeconds = (System.nanoTime() - startNanos) / 1e9;
                        LOG.info("calibration sequences done in {} s; collecting statistics",
                                String.format("%.1f", calibrationSeconds));
                        stages.forEach(stage -> stage.worker().tell(new StageWorker.ReportCalibration(chunkAdapter)));
                    }
                    return Behaviors.same();
                })
                .and(StageWorker.StepFailed.class, m -> {
                    feed.cancel();
                    return host.fail("recipe calibration failed at stage " + m.stageIndex() + ": " + m.reason());
                });
        return host.phase(Coordinator.Phase.QUANTIZING, Behaviors.receive(Coordinator.Command.class)
                .onMessage(Coordinator.WorkerReplied.class, replies::handles, replies::route)
                .onMessage(Coordinator.CalibrationChunkArrived.class, m -> {
                    StatsChunk chunk = m.chunk();
                    assemblers[chunk.stageIndex()].add(chunk);
                    for (StatsChunks.Assembler assembler : assemblers) {
                        if (!assembler.complete()) {
                            return Behaviors.same();
                        }
                    }
                    return planned(assemblers, next);
                })
                .onMessage(Coordinator.StepDeadline.class, m -> {
                    if (!feed.owns(m.batchId())) {
                        return Behaviors.same();
                    }
                    feed.cancel();
                    return host.fail("recipe calibration micro-batch " + m.batchId() + " did not come back within " + settings.stepTimeout());
                }));
    }

    private Behavior<Coordinator.Command> planned(StatsChunks.Assembler[] assemblers, Supplier<Behavior<Coordinator.Command>> next) {
        Map<CalibrationStats.Key, ChannelStats> entries = new TreeMap<>();
        for (StatsChunks.Assembler assembler : assemblers) {
            entries.putAll(assembler.entries());
        }
        CalibrationStats stats = new CalibrationStats(new CalibrationStats.Source("OPT, " + model.numLayers() + " layers, hidden "
                + model.hiddenSize() + " (pipeline of " + stages.size() + " stages)", sourceName(), sequenceCount, sequenceTokens,
                quantization.options().activationRanges()), entries);
        try {
            store.saveStats(stats);
            return sendPlan(QuantPlanner.plan(quantization.recipe(), stats, quantization.alpha()), next);
        } catch (RuntimeException e) {
            return host.fail("cannot plan " + quantization.recipe().name() + ": " + e.getMessage());
        }
    }

    private Behavior<Coordinator.Command> sendPlan(QuantPlan plan, Supplier<Behavior<Coordinator.Command>> next) {
        for (int i = 0; i < stages.size(); i++) {
            StageRef stage = stages.get(i);
            ActorRef<StageWorker.Command> worker = stage.worker();
            worker.tell(new StageWorker.PlanBegin(plan.recipe().name(), quantization.options(), plan.alpha(), sourceName(),
                    sequenceCount, sequenceTokens));
            List<StatsChunk> chunks = plan.stats() == null ? List.of()
                    : StatsChunks.split(plan.stats(), l -> l >= stage.firstLayer() && l < stage.endLayer(), i, StatsChunks.MAX_CHANNELS);
            chunks.forEach(chunk -> worker.tell(new StageWorker.PlanChunk(chunk)));
            int reorders = 0;
            for (Map.Entry<CalibrationStats.Key, ClusterPlan> reorder : plan.reorders().entrySet()) {
                int layer = reorder.getKey().layer();
                if (layer >= stage.firstLayer() && layer < stage.endLayer()) {
                    worker.tell(new StageWorker.PlanReorder(layer, reorder.getKey().site().key(), reorder.getValue().toBytes()));
                    reorders++;
                }
            }
            worker.tell(new StageWorker.PlanEnd(chunks.size(), reorders, store.stageFile(stage.firstLayer(), stage.endLayer()), host.replies()));
        }
        return applying(next);
    }

    private Behavior<Coordinator.Command> applying(Supplier<Behavior<Coordinator.Command>> next) {
        StageWorker.QuantPlanApplied[] applied = new StageWorker.QuantPlanApplied[stages.size()];
        int[] count = {0};
        ReplyRoutes replies = ReplyRoutes.of(StageWorker.QuantPlanApplied.class, m -> {
                    if (m.error() != null) {
                        return host.fail("stage " + m.stageIndex() + " could not build " + quantization.recipe().name() + ": " + m.error());
                    }
                    if (applied[m.stageIndex()] == null) {
                        applied[m.stageIndex()] = m;
                        count[0]++;
                    }
                    if (count[0] < stages.size()) {
                        return Behaviors.same();
                    }
                    saveRecipe(applied);
                    LOG.info("all {} stages serve {} ({} s since calibration began)", stages.size(), quantization.recipe().name(),
                            String.format("%.1f", (System.nanoTime() - startNanos) / 1e9));
                    return next.get();
                });
        return host.phase(Coordinator.Phase.QUANTIZING, Behaviors.receive(Coordinator.Command.class)
                .onMessage(Coordinator.WorkerReplied.class, replies::handles, replies::route));
    }

    private void saveRecipe(StageWorker.QuantPlanApplied[] applied) {
        if (!store.enabled()) {
            return;
        }
        List<SavedRecipe.Stage> saved = new ArrayList<>();
        long bytes = 0;
        for (int i = 0; i < applied.length; i++) {
            if (applied[i].file() == null) {
                LOG.warn("quantization store not written: stage {} did not save its layers ({})", i, applied[i].saveProblem());
                return;
            }
            saved.add(new SavedRecipe.Stage(i, stages.get(i).firstLayer(), stages.get(i).endLayer(),
                    Path.of(applied[i].file()).getFileName().toString(), applied[i].bytes(), applied[i].crc32c()));
            bytes += applied[i].bytes();
        }
        try {
            Path file = store.saveRecipe(saved, calibrationSeconds);
            LOG.info("quantization store: wrote {} ({} stage files, {} MB)", file, saved.size(),
                    String.format("%.1f", bytes / 1e6));
        } catch (RuntimeException e) {
            LOG.warn("quantization store not written: {}", e.getMessage());
        }
    }

    private String sourceName() {
        return quantization.calibrationText().isBlank() ? "random token ids (seed " + quantization.calibrationSeed() + ")"
                : quantization.calibrationText();
    }

    /** Consecutive windows of the calibration text in the model's tokenizer, or random token ids without a text. */
    private List<int[]> sequences() {
        int tokens = Math.min(quantization.calibrationTokens(), model.maxPositions());
        if (quantization.calibrationText().isBlank()) {
            SplittableRandom random = new SplittableRandom(quantization.calibrationSeed());
            List<int[]> sequences = new ArrayList<>();
            for (int i = 0; i < quantization.calibrationSequences(); i++) {
                sequences.add(random.ints(tokens, 4, model.vocabSize()).toArray());
            }
            return sequences;
        }
        Path text = Path.of(quantization.calibrationText());
        int[] ids;
        try (OptTokenizer tokenizer = OptTokenizer.load(Path.of(settings.checkpointDir()))) {
            ids = tokenizer.encodeWithoutSpecialTokens(Files.readString(text));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read calibration text " + text + ": " + e.getMessage(), e);
        }
        List<int[]> windows = TokenWindows.split(ids, tokens, quantization.calibrationSequences());
        if (windows.isEmpty()) {
            throw new IllegalArgumentException("calibration text " + text + " has " + ids.length + " tokens, fewer than one sequence of " + tokens);
        }
        if (windows.size() < quantization.calibrationSequences()) {
            LOG.warn("calibration text {} holds only {} sequences of {} tokens ({} asked for)", text, windows.size(), tokens,
                    quantization.calibrationSequences());
        }
        return windows;
    }
}
