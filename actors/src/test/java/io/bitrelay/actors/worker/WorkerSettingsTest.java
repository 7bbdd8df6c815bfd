package io.bitrelay.actors.worker;

import io.bitrelay.actors.node.BitrelayConfig;
import io.bitrelay.runtime.cuda.CudaProbe;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

class WorkerSettingsTest {

    private static WorkerSettings settings(Map<String, ?> overrides) {
        return WorkerSettings.from(BitrelayConfig.load(overrides, null), "w1", "127.0.0.1");
    }

    @Test
    void cpuWorkerHasNoCudaDevice() {
        WorkerSettings cpu = settings(Map.of("bitrelay.worker.device", "cpu"));
        assertEquals(-1, cpu.cudaDevice());
        assertTrue(cpu.memoryBytes() > 0);
    }

    @Test
    void gpuWorkerWithExplicitMemoryNamesItsOrdinal() {
        WorkerSettings gpu = settings(Map.of("bitrelay.worker.device", "cuda:3", "bitrelay.worker.memory-bytes", "80GiB"));
        assertEquals(3, gpu.cudaDevice());
        assertEquals(80L << 30, gpu.memoryBytes());
    }

    @Test
    void hostWeightsAreKeptUnlessAWorkerStreamsThem() {
        assertEquals(false, settings(Map.of()).streamLayers());
        assertEquals(true, settings(Map.of("bitrelay.worker.host-weights", "stream")).streamLayers());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> settings(Map.of("bitrelay.worker.host-weights", "mmap")));
        assertTrue(e.getMessage().contains("keep or stream") && e.getMessage().contains("mmap"), e.getMessage());
    }

    @Test
    void malformedDeviceIsRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> settings(Map.of("bitrelay.worker.device", "gpu0")));
        assertTrue(e.getMessage().contains("cpu or cuda:N") && e.getMessage().contains("gpu0"), e.getMessage());
    }

    @Test
    void gpuWorkerWithoutAUsableGpuSaysWhy() {
        assumeFalse(CudaProbe.get().available(), "this machine has a GPU");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> settings(Map.of("bitrelay.worker.device", "cuda:0")));
        assertTrue(e.getMessage().contains("cuda:0") && e.getMessage().contains("unavailable"), e.getMessage());
    }
}
