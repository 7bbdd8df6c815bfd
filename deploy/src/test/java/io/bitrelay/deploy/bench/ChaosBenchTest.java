package io.bitrelay.deploy.bench;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** bench chaos refuses settings under which it could not kill three different stage positions, before starting anything. */
class ChaosBenchTest {
    @Test
    void shouldRefuseFewerThanThreeWorkers() {
        String error = refused("--workers", "2");
        assertTrue(error.contains("--workers must be >= 3"), error);
    }

    @Test
    void shouldRefuseRunningWithoutAStandby() {
        String error = refused("--standbys", "0");
        assertTrue(error.contains("--standbys must be >= 1"), error);
    }

    @Test
    void shouldNameAnUnknownStagePosition() {
        String error = refused("--positions", "first,second");
        assertTrue(error.contains("--positions: a stage position is first, middle or last, got 'second'"), error);
    }

    private static String refused(String... arguments) {
        StringWriter err = new StringWriter();
        CommandLine command = new CommandLine(new ChaosBench());
        command.setErr(new PrintWriter(err));
        assertEquals(2, command.execute(arguments), "a usage error");
        return err.toString();
    }
}
