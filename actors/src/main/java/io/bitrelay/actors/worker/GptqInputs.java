package io.bitrelay.actors.worker;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.quant.QuantPlan;
import io.bitrelay.runtime.quant.SequentialGptq;
import io.bitrelay.runtime.wire.BatchLayout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * For a GPTQ recipe: the stage's input rows of every calibration sequence, kept while the coordinator streams
 * calibration, so that the plan can be applied layer by layer ({@link SequentialGptq}) with only one layer's
 * moments in memory. Calibration sequences arrive whole, one step each. Used from the compute thread only.
 */
final class GptqInputs implements AutoCloseable {
    private final int width;
    private final int maxSequences;
    private final Arena arena = Arena.ofShared();
    private final List<MemorySegment> sequences = new ArrayList<>();
    private long bytes;

    /** @param maxSequences the first this many calibration sequences are kept; the rest only calibrate ranges */
    GptqInputs(int width, int maxSequences) {
        this.width = width;
        this.maxSequences = maxSequences;
    }

    /** Copies each entry's rows of {@code hidden} (FP32, rows in layout order) before the layers change them. */
    void record(List<BatchLayout.Entry> entries, MemorySegment hidden) {
        long rowBytes = (long) width * Float.BYTES;
        long offset = 0;
        for (BatchLayout.Entry entry : entries) {
            if (sequences.size() >= maxSequences) {
                return;
            }
            if (entry.startPosition() != 0) {
                throw new IllegalStateException("calibration sequence " + entry.sequenceId() + " starts at "
                        + entry.startPosition() + "; GPTQ keeps whole sequences");
            }
            long size = entry.tokenCount() * rowBytes;
            MemorySegment copy = arena.allocate(size, 64);
            copy.copyFrom(hidden.asSlice(offset, size));
            sequences.add(copy);
            offset += size;
            bytes += size;
        }
    }

    int sequences() {
        return sequences.size();
    }

    long bytes() {
        return bytes;
    }

    /** The stage {@code plan} describes, its weights rounded by GPTQ layer by layer over the kept inputs. */
    OptModel quantize(OptModel base, QuantPlan plan) {
        if (sequences.isEmpty()) {
            throw new IllegalStateException(plan.recipe().name() + " rounds with GPTQ, but this stage kept no calibration"
                    + " inputs (did recipe calibration run on it?)");
        }
        return SequentialGptq.fromInputs(base, plan, sequences, Progress.NONE);
    }

    @Override
    public void close() {
        arena.close();
    }
}
