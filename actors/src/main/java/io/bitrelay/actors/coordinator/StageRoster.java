package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.worker.StageWorker;
import io.bitrelay.actors.worker.WorkerDescription;
import org.apache.pekko.actor.typed.ActorRef;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Which workers a pipeline is placed over, in stage order, at most {@code expected-workers} of them; the others are
 * standbys. The first pipeline takes workers by host, then worker id, so that neighbours on one host link over IPC.
 * A pipeline rebuilt after a loss keeps each surviving worker at its stage and gives a lost worker's stage to a
 * standby; without standbys enough, the survivors close ranks over fewer stages, and the coordinator decides
 * whether that many may serve (min-workers, and whether the layers fit their memory).
 */
final class StageRoster {
    static final Comparator<WorkerDescription> BY_HOST_THEN_ID =
            Comparator.comparing(WorkerDescription::host).thenComparing(WorkerDescription::workerId);

    private StageRoster() {
    }

    /**
     * @param previous  the workers of the pipeline that was lost, in stage order; empty for the first pipeline
     * @param described every worker that has described itself and is still in the cluster
     */
    static List<WorkerDescription> choose(List<WorkerDescription> previous, Collection<WorkerDescription> described,
                                          int expected) {
        Set<ActorRef<StageWorker.Command>> held = new HashSet<>();
        previous.forEach(w -> held.add(w.worker()));
        Deque<WorkerDescription> standbys = new ArrayDeque<>(described.stream()
                .filter(w -> !held.contains(w.worker())).sorted(BY_HOST_THEN_ID).toList());
        List<WorkerDescription> chosen = new ArrayList<>();
        for (WorkerDescription stage : previous) {
            WorkerDescription survivor = described.stream().filter(w -> w.worker().equals(stage.worker())).findFirst().orElse(null);
            if (survivor != null) {
                chosen.add(survivor);
            } else if (!standbys.isEmpty()) {
                chosen.add(standbys.poll());
            }
        }
        while (chosen.size() < expected && !standbys.isEmpty()) {
            chosen.add(standbys.poll());
        }
        return List.copyOf(chosen.subList(0, Math.min(chosen.size(), expected)));
    }
}
