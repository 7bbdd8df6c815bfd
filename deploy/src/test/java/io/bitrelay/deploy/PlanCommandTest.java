package io.bitrelay.deploy;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PlanCommandTest {

    private static String run(int expectedExit, String... args) {
        StringWriter out = new StringWriter();
        CommandLine cli = BitrelayCli.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(out, true));
        assertEquals(expectedExit, cli.execute(args), out::toString);
        return out.toString();
    }

    @Test
    void plansOpt175bOnTwoH200sAndSaysFp16DoesNotFit() {
        String out = run(0, "plan", "--nodes", "1", "--gpus-per-node", "2", "--weights", "fp16,w8a8");
        assertTrue(out.contains("weights fp16: does not fit"), out);
        assertTrue(out.contains("weights w8a8 (1.000 bytes/parameter): 2 stages"), out);
        assertTrue(out.contains("| int4 |") && out.contains("| int3 |"), out);
        assertTrue(out.contains("| w4a16 |"), "the fit table lists every format: " + out);
    }

    @Test
    void rejectsAnUnreadableLinkRate() {
        String out = run(2, "plan", "--inter-node-rate", "very fast");
        assertTrue(out.contains("cannot read link rate 'very fast'"), out);
    }
}
