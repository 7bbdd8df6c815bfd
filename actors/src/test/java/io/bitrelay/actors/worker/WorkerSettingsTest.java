package io.bitrelay.actors.worker;

import io.bitrelay.actors.node.BitrelayConfig;
import io.bitrelay.runtime.cuda.CudaProbe;
import io.bitrelay.runtime.cuda.CudaSettings;
import io.bitrelay.runtime.cuda.cublaslt.GemmSearch;
import org.junit.jupiter.api.Test;

import java.time.Duration;
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
    void dataPlaneThreadsParkBrieflyOnAGpuWorkerUnlessConfigured() {
        assertEquals(1_000_000, settings(Map.of("bitrelay.worker.device", "cpu")).dataPlaneIdle().maxParkNanos());
        assertEquals(50_000, settings(Map.of("bitrelay.worker.device", "cuda:0", "bitrelay.worker.memory-bytes", "8GiB"))
                .dataPlaneIdle().maxParkNanos());
        WorkerSettings configured = settings(Map.of("bitrelay.worker.device", "cpu", "bitrelay.dataplane.idle.max-park", "200us",
                "bitrelay.dataplane.idle.max-yields", "100"));
        assertEquals(new io.bitrelay.actors.dataplane.IdleSettings(10, 100, 10_000, 200_000), configured.dataPlaneIdle());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> settings(Map.of("bitrelay.dataplane.idle.max-park", "5us")));
        assertTrue(bad.getMessage().contains("bitrelay.dataplane.idle") && bad.getMessage().contains("max-park"), bad.getMessage());
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
    void cudaSettingsComeFromTheConfigAndBadOnesAreRefusedByKey() {
        CudaSettings defaults = settings(Map.of()).cuda();
        assertEquals(CudaSettings.defaults().withGemmTuningCache(System.getProperty("user.home") + "/.cache/bitrelay/gemm-tuning"),
                defaults);
        CudaSettings tuned = settings(Map.of("bitrelay.cuda.gemm-search", "variations", "bitrelay.cuda.gemm-search-budget", "3s",
                "bitrelay.cuda.gemm-workspace", "64MiB", "bitrelay.cuda.cublaslt-path", "/opt/cuda/libcublasLt.so.13")).cuda();
        assertEquals(GemmSearch.variations(Duration.ofSeconds(3)), tuned.gemmSearch());
        assertEquals(64L << 20, tuned.gemmWorkspaceBytes());
        assertEquals("/opt/cuda/libcublasLt.so.13", tuned.cublasLtPath());
        IllegalArgumentException mode = assertThrows(IllegalArgumentException.class,
                () -> settings(Map.of("bitrelay.cuda.gemm-search", "exhaustive")));
        assertTrue(mode.getMessage().contains("bitrelay.cuda.gemm-search") && mode.getMessage().contains("exhaustive"),
                mode.getMessage());
        IllegalArgumentException budget = assertThrows(IllegalArgumentException.class, () -> settings(Map.of(
                "bitrelay.cuda.gemm-search", "variations", "bitrelay.cuda.gemm-search-budget", "0s")));
        assertTrue(budget.getMessage().contains("gemm-search-budget"), budget.getMessage());
        IllegalArgumentException workspace = assertThrows(IllegalArgumentException.class,
                () -> settings(Map.of("bitrelay.cuda.gemm-workspace", "lots")));
        assertTrue(workspace.getMessage().contains("gemm-workspace"), workspace.getMessage());
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
