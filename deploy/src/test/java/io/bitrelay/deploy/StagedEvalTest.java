package io.bitrelay.deploy;

import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import io.bitrelay.runtime.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(120)
class StagedEvalTest {
    @TempDir
    Path temp;

    @Test
    void shouldSplitLayersAsEvenlyAsPossible() {
        assertEquals(List.of(new LayerRange(0, 3, 8), new LayerRange(3, 6, 8), new LayerRange(6, 8, 8)), StagedEval.split(8, 3));
    }

    @Test
    void shouldMatchTheSingleProcessPerplexityWithoutLinksAndStayCloseThroughLinkFrames() throws Exception {
        OptConfig config = new OptConfig(300, 64, 3, 4, 128, 160, 64, true, false, true, 2, 2, 1, "float32");
        Path checkpoint = SyntheticCheckpointWriter.write(temp.resolve("tiny"), config,
                SyntheticOptions.defaults().withStorage(DType.F32).withOutliers(true));
        SplittableRandom random = new SplittableRandom(5);
        StringBuilder builder = new StringBuilder();
        for (int i = 0; i < 600; i++) {
            builder.append(List.of("the", "river", "film", "of", "a", "1867", ",", ".").get(random.nextInt(8))).append(' ');
        }
        Path text = Files.writeString(temp.resolve("text.txt"), builder.toString());
        String[] common = {"eval", "--model", checkpoint.toString(), "--text", text.toString(), "--seq-len", "64", "--max-windows", "3",
                "--calib-sequences", "2", "--calib-seq-len", "32", "--recipes", "fp32", "--no-progress"};
        String single = run(common);
        String[] staged = java.util.stream.Stream.concat(java.util.Arrays.stream(common),
                java.util.stream.Stream.of("--stages", "3", "--link-codec", "none,fp16,int8,int4")).toArray(String[]::new);
        String linked = run(staged);
        double reference = number(single, "\\| fp32 \\| ([0-9.]+) \\|");
        assertEquals(reference, number(linked, "\\| fp32 \\| none \\| ([0-9.]+) \\|"), 0.0, linked);
        assertEquals(reference, number(linked, "\\| fp32 \\| fp16 \\| ([0-9.]+) \\|"), reference * 1e-3, linked);
        assertEquals(reference, number(linked, "\\| fp32 \\| int4-rptq \\| ([0-9.]+) \\|"), reference * 0.05, linked);
        // Hidden 64 with 8 clusters: 32 B/token of per-token cluster ranges next to 32 B of 4-bit codes (FP16: 128 B).
        assertTrue(number(linked, "\\| fp32 \\| int4-rptq \\| [0-9.]+ \\| [^|]+ \\| ([0-9.]+)×") > 1.9, linked);
    }

    private static String run(String... args) {
        CommandLine cli = BitrelayCli.commandLine();
        StringWriter out = new StringWriter();
        cli.setOut(new PrintWriter(out));
        assertEquals(0, cli.execute(args), out.toString());
        return out.toString();
    }

    private static double number(String text, String regex) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertTrue(m.find(), regex + " in\n" + text);
        return Double.parseDouble(m.group(1));
    }
}
