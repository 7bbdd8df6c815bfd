package io.bitrelay.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import io.bitrelay.runtime.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(120)
class QuantErrorCommandTest {
    @TempDir
    Path temp;

    @Test
    void smoothQuantBeatsNaivePerTensorOnAnOutlierCheckpoint() throws IOException {
        OptConfig config = new OptConfig(300, 128, 2, 4, 256, 160, 128, true, false, true, 2, 2, 1, "float32");
        Path checkpoint = SyntheticCheckpointWriter.write(temp.resolve("tiny"), config,
                SyntheticOptions.defaults().withStorage(DType.F32).withOutliers(true));
        Path json = temp.resolve("error.json");
        StringWriter out = new StringWriter();
        CommandLine cli = BitrelayCli.commandLine();
        cli.setOut(new PrintWriter(out, true));
        int exit = cli.execute("quant-error", "--model", checkpoint.toString(), "--recipes",
                "w8a8-naive,w8a8-smoothquant", "--sequences", "2", "--seq-len", "32", "--calib-sequences", "4",
                "--calib-seq-len", "32", "--no-progress", "--json", json.toString());
        assertEquals(0, exit, out.toString());
        assertTrue(out.toString().contains("| w8a8-smoothquant |"), out.toString());

        Map<String, JsonNode> results = new HashMap<>();
        new ObjectMapper().readTree(json.toFile()).get("results").forEach(r -> results.put(r.get("recipe").asText(), r));
        double naive = results.get("w8a8-naive").get("relativeError").asDouble();
        double smooth = results.get("w8a8-smoothquant").get("relativeError").asDouble();
        assertEquals(64, results.get("w8a8-naive").get("positions").asLong());
        assertTrue(smooth > 0, "a quantized model differs from the FP32 one");
        assertTrue(smooth * 3 < naive, "SmoothQuant error " + smooth + " should be well below naive W8A8 " + naive);
    }

    @Test
    void rejectsUnknownRecipeByName() {
        StringWriter err = new StringWriter();
        CommandLine cli = BitrelayCli.commandLine();
        cli.setErr(new PrintWriter(err, true));
        int exit = cli.execute("quant-error", "--preset", "opt-tiny", "--models-dir", temp.toString(), "--recipes", "w2a2-magic");
        assertEquals(2, exit);
        assertTrue(err.toString().contains("unknown recipe 'w2a2-magic'"), err.toString());
    }
}
