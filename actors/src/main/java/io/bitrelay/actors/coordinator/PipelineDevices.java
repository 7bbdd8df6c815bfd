package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.worker.WorkerDescription;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * How many micro-batches keep a pipeline's devices busy: one per device its stages run on, not one per stage.
 * Stages whose workers share a GPU (same host, same {@code cuda:N}) take turns on it, so giving each its own
 * micro-batch only splits the batch: every part reads the weights again (decode is bound by that read) and the
 * GPU switches between the workers' contexts. Each CPU worker counts as a device of its own; its compute threads
 * are its own even where workers share a host.
 */
final class PipelineDevices {
    private PipelineDevices() {
    }

    /** Distinct devices among the stages' workers, in pipeline order (1 at least). */
    static int count(List<WorkerDescription> stageWorkers) {
        Set<String> devices = new HashSet<>();
        for (WorkerDescription worker : stageWorkers) {
            devices.add(worker.device().startsWith("cuda") ? worker.host() + "/" + worker.device() : "worker/" + worker.workerId());
        }
        return Math.max(1, devices.size());
    }
}
