package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.worker.StageWorker;
import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.quant.ClusterPlan;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * The start-up phase of RPTQ links (int4, int3): runs calibration sequences of random token ids through the
 * pipeline (FP16 frames, caches thrown away), collects the per-channel range of what crossed each link,
 * clusters the channels (k-means on (min, max)) and sends each link's plan to both its ends; done once all
 * have acknowledged. Random ids suffice: the link carries the residual stream, whose outlier channels are a
 * property of the weights, not of the text.
 */
final class LinkCalibration {
    private static final long FIRST_BATCH_ID = -1_000_000; // apart from the scheduler's ids, which count up from 1

    private final ActorContext<Coordinator.Command> context;
    private final TimerScheduler<Coordinator.Command> timers;
    private final CoordinatorSettings settings;
    private final OptConfig model;
    private final List<ActorRef<StageWorker.Command>> stages;
    private final PhaseHost host;

    LinkCalibration(ActorContext<Coordinator.Command> context, TimerScheduler<Coordinator.Command> timers, CoordinatorSettings settings,
                    OptConfig model, List<ActorRef<StageWorker.Command>> stages, PhaseHost host) {
        this.context = context;
        this.timers = timers;
        this.settings = settings;
        this.model = model;
        this.stages = List.copyOf(stages);
        this.host = host;
    }

    /** @param next the behaviour once every link uses its plan */
    Behavior<Coordinator.Command> start(Supplier<Behavior<Coordinator.Command>> next) {
        int tokens = Math.min(settings.linkCalibrationTokens(), model.maxPositions());
        SplittableRandom random = new SplittableRandom(settings.linkCalibrationSeed());
        List<int[]> sequences = new ArrayList<>();
        for (int i = 0; i < settings.linkCalibrationSequences(); i++) {
            sequences.add(random.ints(tokens, 4, model.vocabSize()).toArray());
        }
        CalibrationFeed feed = new CalibrationFeed(sequences, 2, stages.size() + 1, FIRST_BATCH_ID, stages.getFirst(), timers,
                settings.stepTimeout(), Progress.NONE);
        context.getLog().info("calibrating {} link(s) for {} with {} sequences × {} tokens", stages.size() - 1,
                settings.linkCodec(), sequences.size(), tokens);
        feed.start();
        return calibrating(feed, next);
    }

    private Behavior<Coordinator.Command> calibrating(CalibrationFeed feed, Supplier<Behavior<Coordinator.Command>> next) {
        ActorRef<StageWorker.LinkRanges> rangesAdapter = context.messageAdapter(StageWorker.LinkRanges.class,
                Coordinator.LinkRangesArrived::new);
        StageWorker.LinkRanges[] ranges = new StageWorker.LinkRanges[stages.size() - 1];
        int[] pendingAcks = {2 * (stages.size() - 1)};
        ReplyRoutes replies = ReplyRoutes.of(StageWorker.CalibrationStepDone.class, m -> {
                    if (feed.done(m.batchId())) {
                        for (int i = 0; i < stages.size() - 1; i++) {
                            stages.get(i).tell(new StageWorker.ReportLinkRanges(rangesAdapter));
                        }
                    }
                    return Behaviors.same();
                })
                .and(StageWorker.LinkPlanApplied.class, m -> --pendingAcks[0] == 0 ? next.get() : Behaviors.same())
                .and(StageWorker.StepFailed.class, m -> {
                    feed.cancel();
                    return host.fail("link calibration failed at stage " + m.stageIndex() + ": " + m.reason());
                });
        return host.phase(Coordinator.Phase.CALIBRATING, Behaviors.receive(Coordinator.Command.class)
                .onMessage(Coordinator.WorkerReplied.class, replies::handles, replies::route)
                .onMessage(Coordinator.LinkRangesArrived.class, m -> {
                    ranges[m.ranges().stageIndex()] = m.ranges();
                    if (Arrays.stream(ranges).allMatch(Objects::nonNull)) {
                        sendPlans(ranges);
                    }
                    return Behaviors.same();
                })
                .onMessage(Coordinator.StepDeadline.class, m -> {
                    if (!feed.owns(m.batchId())) {
                        return Behaviors.same();
                    }
                    feed.cancel();
                    return host.fail("link calibration micro-batch " + m.batchId() + " did not come back within " + settings.stepTimeout());
                }));
    }

    private void sendPlans(StageWorker.LinkRanges[] ranges) {
        ChannelClustering clustering = new ChannelClustering(settings.linkClusters());
        for (int i = 0; i < ranges.length; i++) {
            ClusterPlan plan = clustering.plan(ranges[i].min(), ranges[i].max());
            byte[] bytes = plan.toBytes();
            context.getLog().info("link {} → {}: {} clusters of sizes {}", i, i + 1, plan.clusters(), clusterSizes(plan));
            stages.get(i).tell(new StageWorker.UseLinkPlan(bytes, settings.linkStaticRanges(), true, host.replies()));
            stages.get(i + 1).tell(new StageWorker.UseLinkPlan(bytes, settings.linkStaticRanges(), false, host.replies()));
        }
    }

    private static String clusterSizes(ClusterPlan plan) {
        StringBuilder sizes = new StringBuilder();
        for (int c = 0; c < plan.clusters(); c++) {
            sizes.append(c == 0 ? "" : ", ").append(plan.clusterSize(c));
        }
        return sizes.toString();
    }
}
