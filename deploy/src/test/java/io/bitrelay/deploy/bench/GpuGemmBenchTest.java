package io.bitrelay.deploy.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitrelay.runtime.cuda.CudaProbe;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(300)
class GpuGemmBenchTest {
    @TempDir
    Path temp;

    @Test
    void shouldExplainWhyItCannotRunWithoutAGpu() {
        Assumptions.assumeFalse(CudaProbe.get().available(), "a GPU is present: covered by the tiny run below");
        int exit = new CommandLine(new BenchCommand()).execute("gpu-gemm", "--shapes", "256x512", "--m", "1");
        assertEquals(2, exit);
    }

    @Test
    void shouldRejectAnUnknownShape() {
        assertThrows(IllegalArgumentException.class, () -> GpuGemmShape.parse("attention"));
        assertEquals(new GpuGemmShape("1024x4096", 1024, 4096), GpuGemmShape.parse("1024x4096"));
    }

    @Test
    void tinyRunWritesOneValidatedResultPerM() throws Exception {
        CudaProbe probe = CudaProbe.get();
        if (!probe.available()) {
            System.out.println("[GPU test skipped] " + probe.reason());
            Assumptions.assumeTrue(false, probe.reason());
        }
        Path json = temp.resolve("gpu-gemm.json");
        int exit = new CommandLine(new BenchCommand()).execute("gpu-gemm", "--shapes", "1024x2048", "--m", "1,64",
                "--candidates", "4", "--tune-runs", "2", "--runs", "5", "--json", json.toString());
        assertEquals(0, exit);
        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertTrue(root.path("gpu").asText().length() > 0);
        assertEquals(2, root.path("results").size());
        for (JsonNode row : root.path("results")) {
            assertTrue(row.path("int8").path("micros").asDouble() > 0, row.toString());
            assertTrue(row.path("fp16").path("micros").asDouble() > 0, row.toString());
        }
    }
}
