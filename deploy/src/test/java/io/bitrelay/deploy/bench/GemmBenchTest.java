package io.bitrelay.deploy.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** A tiny-shape run of {@code bench gemm}: validation, timing and the JSON report, without the numpy peer. */
@Timeout(60)
class GemmBenchTest {
    @TempDir
    Path temp;

    @Test
    void tinyRunWritesOneResultPerM() throws Exception {
        Path json = temp.resolve("gemm.json");
        int exit = new CommandLine(new BenchCommand()).execute("gemm", "--m", "1,3,17", "--k", "40", "--n", "24",
                "--seconds", "0.05", "--warmup", "0.05", "--no-peer", "--json", json.toString());
        assertEquals(0, exit);
        JsonNode results = new ObjectMapper().readTree(json.toFile()).path("results");
        assertEquals(3, results.size());
        for (JsonNode row : results) {
            assertTrue(row.path("fp32Gflops").asDouble() > 0, row.toString());
            assertTrue(row.path("int8Gops").asDouble() > 0, row.toString());
        }
    }
}
