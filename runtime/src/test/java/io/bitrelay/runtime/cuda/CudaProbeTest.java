package io.bitrelay.runtime.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs everywhere: a machine without a GPU or driver gets reasons, never a crash. */
@Timeout(60)
class CudaProbeTest {
    @Test
    void shouldReportAReasonInsteadOfFailingWhereNoGpuExists() {
        CudaProbe probe = CudaProbe.get();
        if (probe.available()) {
            assertTrue(probe.deviceCount() > 0);
            assertTrue(probe.driverVersion() > 0);
        } else {
            assertFalse(probe.reason().isBlank(), "an unavailable backend must say why");
            assertTrue(probe.reason().startsWith("CUDA backend unavailable"), probe.reason());
            CudaUnavailableException thrown = assertThrows(CudaUnavailableException.class, () -> CudaContext.open(0));
            assertTrue(thrown.getMessage().contains("unavailable"), thrown.getMessage());
            assertThrows(CudaUnavailableException.class, CudaProbe::requireAvailable);
        }
    }

    @Test
    void shouldRefuseADeviceOrdinalBeyondTheGpus() {
        assertThrows(CudaUnavailableException.class, () -> CudaDevice.get(10_000));
    }
}
