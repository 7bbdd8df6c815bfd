package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.pipeline.MicroBatch;

import io.bitrelay.actors.worker.StageWorker;
import io.bitrelay.runtime.eval.Progress;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Streams calibration sequences into the first stage as calibration micro-batches (whole throwaway
 * sequences, nothing sampled), keeping at most {@code maxInFlight} in the pipeline so the stages stay busy
 * without queueing the whole calibration set in memory. Each batch has a deadline timer; the last stage's
 * {@code StageWorker.CalibrationStepDone} frees its slot for the next.
 */
final class CalibrationFeed {
    private final List<int[]> sequences;
    private final int sequencesPerBatch;
    private final int maxInFlight;
    private final ActorRef<StageWorker.Command> firstStage;
    private final TimerScheduler<Coordinator.Command> timers;
    private final Duration stepTimeout;
    private final Progress progress;
    private final Set<Long> inFlight = new HashSet<>();
    private long nextBatchId;
    private int nextSequence;
    private int doneSequences;

    /**
     * @param firstBatchId ids count down from here, apart from the scheduler's (which count up from 1) and
     *                     from other feeds'
     */
    CalibrationFeed(List<int[]> sequences, int sequencesPerBatch, int maxInFlight, long firstBatchId,
                    ActorRef<StageWorker.Command> firstStage, TimerScheduler<Coordinator.Command> timers, Duration stepTimeout,
                    Progress progress) {
        this.sequences = List.copyOf(sequences);
        this.sequencesPerBatch = sequencesPerBatch;
        this.maxInFlight = Math.max(1, maxInFlight);
        this.nextBatchId = firstBatchId;
        this.firstStage = firstStage;
        this.timers = timers;
        this.stepTimeout = stepTimeout;
        this.progress = progress;
    }

    /** Sends the first batches; true when there is nothing to send at all. */
    boolean start() {
        fill();
        return inFlight.isEmpty();
    }

    boolean owns(long batchId) {
        return inFlight.contains(batchId);
    }

    /** One batch came back from the last stage; true once every sequence has. */
    boolean done(long batchId) {
        timers.cancel(batchId);
        if (!inFlight.remove(batchId)) {
            return false;
        }
        doneSequences += Math.min(sequencesPerBatch, sequences.size() - doneSequences);
        progress.update(doneSequences, sequences.size());
        fill();
        if (inFlight.isEmpty()) {
            progress.finish();
            return true;
        }
        return false;
    }

    void cancel() {
        inFlight.forEach(timers::cancel);
        inFlight.clear();
        progress.finish();
    }

    int sequences() {
        return sequences.size();
    }

    private void fill() {
        while (inFlight.size() < maxInFlight && nextSequence < sequences.size()) {
            List<MicroBatch.Entry> entries = new ArrayList<>();
            for (int i = nextSequence; i < Math.min(sequences.size(), nextSequence + sequencesPerBatch); i++) {
                // Ids from the top of the range: the scheduler counts its sequences up from 1.
                entries.add(new MicroBatch.Entry(Integer.MAX_VALUE - i, sequences.get(i), 0, null));
            }
            nextSequence += entries.size();
            long batchId = nextBatchId--;
            inFlight.add(batchId);
            firstStage.tell(new StageWorker.RunStep(new MicroBatch(batchId, 0, entries.toArray(MicroBatch.Entry[]::new), true)));
            timers.startSingleTimer(batchId, new Coordinator.StepDeadline(batchId), stepTimeout);
        }
    }
}
