package io.bitrelay.deploy.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** bench serve end to end on a one-worker CPU cluster of a tiny model: a real worker JVM, real HTTP streams. */
@Timeout(120)
class ServeBenchTest {
    /** Two narrow layers and a small vocabulary: the worker loads in a moment, a step takes well under a millisecond. */
    private static final OptConfig TINY = new OptConfig(1000, 64, 2, 4, 128, 128, 64, true, false, true, 2, 2, 1, "float16");

    @TempDir
    Path temp;

    @Test
    void shouldStreamExactlyMaxTokensPerRequestAndReportEveryStagesPhases() throws Exception {
        Path model = SyntheticCheckpointWriter.write(temp.resolve("tiny"), TINY, SyntheticOptions.defaults().withSeed(5));
        Path json = temp.resolve("serve.json");
        int exit = new CommandLine(new ServeBench()).execute("--model", model.toString(), "--workers", "1",
                "--concurrency", "1,2", "--max-tokens", "4", "--prompt-tokens", "8", "--warmup-requests", "1",
                "--quant-store", "none", "--logs", temp.resolve("logs").toString(), "--json", json.toString());
        assertEquals(0, exit);

        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertEquals(1, root.path("settings").path("workers").asInt());
        JsonNode results = root.path("results");
        assertEquals(2, results.size());
        for (int i = 0; i < 2; i++) {
            JsonNode result = results.get(i);
            int n = List.of(1, 2).get(i);
            assertEquals(n, result.path("concurrency").asInt());
            assertEquals(0, result.path("failures").asInt(), result.path("errors").toString());
            // A stream that did not yield exactly max_tokens counts as failed, so this is every request's 4 tokens.
            assertEquals(4 * n, result.path("tokens").asInt());
            assertTrue(result.path("tokensPerSecond").asDouble() > 0);
            JsonNode stages = result.path("stages");
            assertEquals(1, stages.size());
            JsonNode stage = stages.get(0);
            assertTrue(stage.path("steps").asLong() > 0, stage.toString());
            for (String phase : List.of("queue", "input", "layers", "head", "sample", "output")) {
                assertTrue(stage.path("msPerStep").path(phase).isNumber(), phase + " in " + stage);
            }
            assertTrue(stage.path("msPerStep").path("layers").asDouble() > 0, stage.toString());
        }
    }

    @Test
    void shouldRefuseAZeroConcurrencyWithAnOptionError() {
        CommandLine command = new CommandLine(new ServeBench());
        command.setErr(new java.io.PrintWriter(new java.io.StringWriter()));
        assertEquals(2, command.execute("--concurrency", "1,0"));
    }
}
