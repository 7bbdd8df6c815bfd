package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.worker.StageWorker;
import io.bitrelay.actors.worker.WorkerDescription;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class StageRosterTest {
    private static final ActorTestKit KIT = ActorTestKit.create();

    @AfterAll
    static void stop() {
        KIT.shutdownTestKit();
    }

    private static WorkerDescription worker(String id) {
        return new WorkerDescription(KIT.<StageWorker.Command>createTestProbe().ref(), id, "127.0.0.1", "cpu", 1L << 30, 40450);
    }

    private static List<String> ids(List<WorkerDescription> workers) {
        return workers.stream().map(WorkerDescription::workerId).toList();
    }

    @Test
    void shouldTakeTheFirstExpectedWorkersByHostThenIdForTheFirstPipeline() {
        WorkerDescription w1 = worker("worker-1");
        WorkerDescription w2 = worker("worker-2");
        WorkerDescription w3 = worker("worker-3");
        WorkerDescription w4 = worker("worker-4");
        assertEquals(List.of("worker-1", "worker-2", "worker-3"), ids(StageRoster.choose(List.of(), List.of(w3, w4, w1, w2), 3)));
    }

    @Test
    void shouldGiveALostWorkersStageToAStandbyAndKeepTheSurvivorsAtTheirs() {
        WorkerDescription w1 = worker("worker-1");
        WorkerDescription w2 = worker("worker-2");
        WorkerDescription w3 = worker("worker-3");
        WorkerDescription standby = worker("worker-9");
        assertEquals(List.of("worker-1", "worker-9", "worker-3"),
                ids(StageRoster.choose(List.of(w1, w2, w3), List.of(w1, w3, standby), 3)));
    }

    @Test
    void shouldCloseRanksOverTheSurvivorsWithoutAStandby() {
        WorkerDescription w1 = worker("worker-1");
        WorkerDescription w2 = worker("worker-2");
        WorkerDescription w3 = worker("worker-3");
        assertEquals(List.of("worker-1", "worker-3"), ids(StageRoster.choose(List.of(w1, w2, w3), List.of(w3, w1), 3)));
    }
}
