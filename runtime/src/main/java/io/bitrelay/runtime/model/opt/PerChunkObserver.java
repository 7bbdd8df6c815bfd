package io.bitrelay.runtime.model.opt;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Shows an {@link ActivationObserver} each chunk's rows of a step as a call of its own. A statistic kept per call
 * (the batch-mean ranges of {@code CalibrationCollector}: one batch per call) then counts sequences, as
 * {@code Calibration} feeds them one at a time, and not however a cluster's scheduler happened to group them into
 * micro-batches; statistics kept per row (extremes, moments) are the same either way.
 */
final class PerChunkObserver implements ActivationObserver {
    private final ActivationObserver target;
    private final int[] chunkRows; // (chunks) rows of each chunk, in step order
    private final int totalRows;

    private PerChunkObserver(ActivationObserver target, int[] chunkRows, int totalRows) {
        this.target = target;
        this.chunkRows = chunkRows;
        this.totalRows = totalRows;
    }

    /** {@code target} itself when it is null (the serving path) or the step holds one chunk. */
    static ActivationObserver of(ActivationObserver target, List<SequenceChunk> chunks) {
        if (target == null || chunks.size() <= 1) {
            return target;
        }
        int[] rows = new int[chunks.size()];
        int total = 0;
        for (int i = 0; i < rows.length; i++) {
            rows[i] = chunks.get(i).length();
            total += rows[i];
        }
        return new PerChunkObserver(target, rows, total);
    }

    @Override
    public void observe(int layer, ActivationSite site, MemorySegment rows, int rowCount, int width) {
        if (rowCount != totalRows) {
            throw new IllegalStateException("layer " + layer + " " + site.key() + ": " + rowCount + " rows, the step's chunks hold "
                    + totalRows);
        }
        long offset = 0;
        for (int chunk : chunkRows) {
            long bytes = (long) chunk * width * Float.BYTES;
            if (chunk > 0) {
                target.observe(layer, site, rows.asSlice(offset, bytes), chunk, width);
            }
            offset += bytes;
        }
    }
}
