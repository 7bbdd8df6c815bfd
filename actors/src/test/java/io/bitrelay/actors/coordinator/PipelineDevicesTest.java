package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.worker.WorkerDescription;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class PipelineDevicesTest {
    private static WorkerDescription worker(String id, String host, String device) {
        return new WorkerDescription(null, id, host, device, 1L << 30, 0);
    }

    @Test
    void workersSharingOneGpuAreOneDevice() {
        assertEquals(1, PipelineDevices.count(List.of(worker("w1", "a", "cuda:0"), worker("w2", "a", "cuda:0"),
                worker("w3", "a", "cuda:0"))));
    }

    @Test
    void gpusAreToldApartByIndexAndHost() {
        assertEquals(3, PipelineDevices.count(List.of(worker("w1", "a", "cuda:0"), worker("w2", "a", "cuda:1"),
                worker("w3", "b", "cuda:0"))));
    }

    @Test
    void everyCpuWorkerIsADeviceOfItsOwn() {
        assertEquals(3, PipelineDevices.count(List.of(worker("w1", "a", "cpu"), worker("w2", "a", "cpu"),
                worker("w3", "a", "cuda:0"))));
    }
}
