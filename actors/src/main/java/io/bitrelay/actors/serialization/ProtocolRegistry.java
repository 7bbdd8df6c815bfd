package io.bitrelay.actors.serialization;

import io.bitrelay.actors.coordinator.FinishReason;

import com.esotericsoftware.kryo.Kryo;
import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.coordinator.JobEvent;
import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.gateway.TokenListener;
import io.bitrelay.actors.dataplane.Link;
import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.actors.worker.WorkerDescription;
import io.bitrelay.actors.worker.StageStats;
import io.bitrelay.actors.worker.StageWorker;
import io.bitrelay.runtime.generate.SamplingParams;

/**
 * Every class that crosses JVMs, with a fixed Kryo id. Ids are part of the wire protocol between nodes of
 * one cluster: append new classes at the end, never renumber.
 */
public final class ProtocolRegistry {
    static final int ACTOR_REF_ID = 100;
    private static final int FIRST_ID = 101;

    private static final Class<?>[] CLASSES = {
            // plain values
            int[].class,
            String[].class,
            SamplingParams.class,
            FinishReason.class,
            GenerationJob.class,
            // pipeline description
            WorkerDescription.class,
            Link.class,
            StageAssignment.class,
            MicroBatch.class,
            MicroBatch.Entry.class,
            MicroBatch.Entry[].class,
            StageStats.class,
            StageStats.LinkCounters.class,
            // coordinator protocol, with the worker replies (StageWorker.Reply) that sat in it before issue 14
            StageWorker.WorkerDescribed.class,
            StageWorker.StageReady.class,
            StageWorker.StageFailed.class,
            Coordinator.Submit.class,
            Coordinator.Cancel.class,
            StageWorker.StepCompleted.class,
            StageWorker.StepFailed.class,
            Coordinator.GetStatus.class,
            Coordinator.Status.class,
            Coordinator.StageView.class,
            Coordinator.StageView[].class,
            // worker protocol
            StageWorker.Describe.class,
            StageWorker.LoadStage.class,
            StageWorker.RunStep.class,
            StageWorker.CloseSequences.class,
            StageWorker.ReportStats.class,
            StageWorker.InjectFault.class,
            // gateway events
            JobEvent.TokenGenerated.class,
            JobEvent.JobFinished.class,
            JobEvent.JobFailed.class,
            Coordinator.CollectStats.class,
            io.bitrelay.actors.coordinator.StatsAggregator.PipelineStats.class,
            StageStats[].class,
            Coordinator.InjectFault.class,
            float[].class,
            byte[].class,
            StageWorker.CalibrationStepDone.class,
            StageWorker.LinkPlanApplied.class,
            StageWorker.ReportLinkRanges.class,
            StageWorker.LinkRanges.class,
            StageWorker.UseLinkPlan.class,
            // recipe calibration and the quantization store (issue 4)
            io.bitrelay.actors.pipeline.StageQuantization.class,
            io.bitrelay.actors.pipeline.StatsChunk.class,
            StageWorker.BeginRecipeCalibration.class,
            StageWorker.ReportCalibration.class,
            StageWorker.PlanBegin.class,
            StageWorker.PlanChunk.class,
            StageWorker.PlanReorder.class,
            StageWorker.PlanEnd.class,
            StageWorker.RecipeCalibrationReady.class,
            StageWorker.QuantPlanApplied.class,
            // prompt scoring and logprobs (issue 4: eval through a cluster)
            double[].class,
            io.bitrelay.runtime.eval.TokenScore.class,
            io.bitrelay.runtime.eval.TokenScore[].class,
            io.bitrelay.runtime.eval.TokenScore[][].class,
            JobEvent.PromptScored.class,
            // per-phase step time in StageStats (issue 14: the serving loop)
            long[].class,
            // the coordinator's phase as an enum (issue 14)
            Coordinator.Phase.class,
            Coordinator.Phase[].class,
            // resident micro-batches: the decode loop closes on the first stage (issue 14)
            io.bitrelay.actors.pipeline.StopRule.class,
            StageWorker.StepSampled.class,
            StageWorker.LeaveBatch.class,
            StageWorker.DropBatch.class,
            StageWorker.SequencesLeft.class,
            // recipe options in StageQuantization and PlanBegin (issue 19: the cluster calibrates as eval does)
            io.bitrelay.runtime.quant.RecipeOptions.class,
            io.bitrelay.runtime.quant.RangeEstimator.class,
            // a worker stopping on SIGTERM is drained first (issue 15: rolling restart)
            Coordinator.DrainWorker.class,
            Coordinator.WorkerDrained.class,
            // the pipeline's link key in StageAssignment (issue 16: authenticated frames)
            io.bitrelay.actors.pipeline.LinkKey.class,
            // and how it protects the links: authenticated or encrypted frames (issue 16)
            io.bitrelay.runtime.wire.LinkProtection.class,
            // coordinator admission: a bounded queue and request deadlines (issue 16)
            io.bitrelay.actors.coordinator.FailureKind.class,
            JobEvent.JobQueued.class,
            // the whole cluster stopping: drains rebuild nothing (issue 15)
            Coordinator.StopPlacing.class,
            Coordinator.PlacingStopped.class,
            // the coordinator's share of time to first token in the pipeline's stats (issue 14)
            io.bitrelay.actors.coordinator.FirstTokenTimes.class,
            // the coordinator singleton handed over: gateways resume their jobs on the new one (issue 15)
            Coordinator.Resume.class,
    };

    private ProtocolRegistry() {
    }

    static void register(Kryo kryo) {
        for (int i = 0; i < CLASSES.length; i++) {
            kryo.register(CLASSES[i], FIRST_ID + i);
        }
    }

    /** For tests: every registered class. */
    public static Class<?>[] classes() {
        return CLASSES.clone();
    }
}
