package io.bitrelay.deploy;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.eval.ProgressBar;
import picocli.CommandLine.Option;

/** The {@code --no-progress} flag of the long-running commands, and the progress sink it picks. */
public final class ProgressOptions {
    @Option(names = "--no-progress", description = "No progress bars on stderr.")
    boolean noProgress;

    /** A progress bar on stderr labelled {@code label} counting {@code unit}, or nothing with --no-progress. */
    public Progress progress(String label, String unit) {
        return noProgress ? Progress.NONE : ProgressBar.stderr(label, unit);
    }
}
