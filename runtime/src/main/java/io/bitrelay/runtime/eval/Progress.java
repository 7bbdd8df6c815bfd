package io.bitrelay.runtime.eval;

/** Where a long job reports how far it is; {@link #NONE} for tests and quiet callers. */
public interface Progress {
    Progress NONE = new Progress() {
        @Override
        public void update(int done, int total) {
        }

        @Override
        public void finish() {
        }
    };

    /** {@code done} of {@code total} units are complete. */
    void update(int done, int total);

    /** The job is over (successfully or not); ends the progress display. */
    void finish();
}
