package io.bitrelay.actors.coordinator;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.eval.ProgressBar;
import org.slf4j.Logger;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * A {@link ProgressBar} drawn into the coordinator's log: one line per update at most every
 * {@code intervalMillis} (and always the last), since a log cannot redraw a line in place.
 */
final class LoggedProgress implements Progress {
    private final Logger log;
    private final long intervalMillis;
    private final ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    private final ProgressBar bar;
    private long lastLogMillis;

    LoggedProgress(Logger log, String label, String unit, long intervalMillis) {
        this.log = log;
        this.intervalMillis = intervalMillis;
        this.bar = new ProgressBar(new PrintStream(buffer, true, StandardCharsets.UTF_8), label, unit);
    }

    @Override
    public void update(int done, int total) {
        buffer.reset();
        bar.update(done, total);
        long now = System.currentTimeMillis();
        if (done >= total || now - lastLogMillis >= intervalMillis) {
            lastLogMillis = now;
            log.info(buffer.toString(StandardCharsets.UTF_8).replace("\r", "").strip());
        }
    }

    @Override
    public void finish() {
        bar.finish();
        buffer.reset();
    }
}
