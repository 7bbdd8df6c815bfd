package io.bitrelay.runtime.eval;

import java.io.PrintStream;

/** A one-line progress bar redrawn in place ({@code \r}), with elapsed time and an estimate of what is left. */
public final class ProgressBar implements Progress {
    private static final int BAR_WIDTH = 30;

    private final PrintStream out;
    private final String label;
    private final String unit;
    private final long startNanos = System.nanoTime();
    private boolean drawn;

    public ProgressBar(PrintStream out, String label, String unit) {
        this.out = out;
        this.label = label;
        this.unit = unit;
    }

    /** On stderr, where it does not mix with results printed on stdout. */
    public static ProgressBar stderr(String label, String unit) {
        return new ProgressBar(System.err, label, unit);
    }

    @Override
    public synchronized void update(int done, int total) {
        double fraction = total <= 0 ? 1.0 : Math.min(1.0, (double) done / total);
        int filled = (int) Math.round(fraction * BAR_WIDTH);
        double elapsedSeconds = (System.nanoTime() - startNanos) / 1e9;
        String eta = done > 0 && done < total
                ? String.format(", ~%.0f s left", elapsedSeconds / done * (total - done)) : "";
        out.printf("\r%s [%s%s] %d/%d %s, %.1f s%s   ", label, "#".repeat(filled), ".".repeat(BAR_WIDTH - filled),
                done, total, unit, elapsedSeconds, eta);
        out.flush();
        drawn = true;
    }

    @Override
    public synchronized void finish() {
        if (drawn) {
            out.println();
            out.flush();
            drawn = false;
        }
    }
}
