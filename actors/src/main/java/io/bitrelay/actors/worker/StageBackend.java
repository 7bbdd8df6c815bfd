package io.bitrelay.actors.worker;

import io.bitrelay.runtime.generate.SamplingRows;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Consumer;

/**
 * What differs between a stage that runs its layers on the CPU ({@link CpuStageBackend}) and one that runs them on
 * its GPU ({@link GpuStageBackend}), so that {@link StageEngine}'s step loop reads the same for both: where a step's
 * rows live, the layers and the KV caches they keep per sequence, the last stage's logits and sampling, and where
 * the outbound frame is encoded.
 *
 * <p>A step's rows are host FP32 rows in layout order (hidden size wide, from the step's arena), or
 * {@link #ON_DEVICE} when they stay on the GPU from the input to the output, so that only packed frame bytes or
 * sampled ids cross PCIe. Calibration steps always keep their rows on the host.
 *
 * <p>Used from the stage's compute thread only, except {@link #weightBytes()}.
 */
interface StageBackend extends AutoCloseable {
    /** What stands for a step's rows while they stay on the device: the host holds no copy. */
    MemorySegment ON_DEVICE = MemorySegment.NULL;

    // ---- input -----------------------------------------------------------------------------------------------

    /** The first stage's embedded rows (host FP32) as the step's rows: as they are, or queued onto the device. */
    MemorySegment load(MemorySegment embedded, BatchLayout layout);

    /** A validated frame's rows as the step's rows: decoded on the host into {@code step}, or queued onto the device. */
    MemorySegment receive(LinkFrameReader frame, BatchLayout layout, Arena step);

    /** A frame's rows decoded into host FP32 rows from {@code step} (whatever the backend, calibration frames go so). */
    static MemorySegment decodeOnHost(LinkFrameReader frame, Arena step) {
        MemorySegment hidden = step.allocate((long) frame.rows() * frame.width() * Float.BYTES, 64);
        frame.decodeInto(hidden);
        return hidden;
    }

    // ---- layers ----------------------------------------------------------------------------------------------

    /**
     * Runs the stage's layers over the step's rows in place; each entry continues its sequence's cache, which must
     * hold exactly the entry's start position. {@code tokens} is null past the first stage.
     */
    void runLayers(BatchLayout layout, List<int[]> tokens, MemorySegment hidden, Arena step);

    /**
     * Runs the stage's layers over a link calibration step's host rows in place: whole sequences on caches freed
     * right after. (Recipe calibration never comes here: it runs the CPU's FP32 stage, see {@link StageQuantizer}.)
     */
    void runCalibration(BatchLayout layout, List<int[]> tokens, MemorySegment hidden, Arena step);

    // ---- the last stage's head -------------------------------------------------------------------------------

    /**
     * The step's rows where the last stage's head and prompt scoring read them: host rows (copied from the device
     * once its work is done, when they were there), or {@link #ON_DEVICE} when the device's LM head alone reads them.
     */
    MemorySegment headRows(BatchLayout layout, MemorySegment hidden, Arena step);

    /** Logits of {@code rows} of the step's rows ({@code hidden} as {@link #headRows} gave it). */
    float[][] logits(BatchLayout layout, MemorySegment hidden, int[] rows, Arena step);

    /** Whether the device picks this step's tokens ({@link #sample}) instead of the host sampling {@link #logits}. */
    boolean samplesOnDevice(BatchLayout layout);

    /** The next token of each of {@code rows}, sampled on the device as {@code params} says; only when {@link #samplesOnDevice}. */
    void sample(int[] rows, SamplingRows params, int[] tokensOut);

    // ---- steps ahead: a stage that is first and last at once -------------------------------------------------

    /** Tokens a sampling pass left on the device ({@link #sampleAhead}), not yet on the host. */
    interface SampledAhead {
        /** Tokens in the pass, one per sampled row. */
        int count();
    }

    /**
     * Whether this stage runs steps ahead: it embeds its own inputs and samples on its device, so step s + 1 is queued
     * from the tokens step s sampled there before they reach the host, and the host's work between steps overlaps
     * the device's. Then every first-stage step's inputs go through {@link #embedOnDevice}.
     */
    default boolean runsStepsAhead() {
        return false;
    }

    /**
     * Queues a first-stage step's input embeddings onto the device: row r is token {@code tokens[r]}, or where
     * {@code fed[r] >= 0} the {@code fed[r]}-th token of {@code previous}, at position {@code positions[r]}; returns
     * {@link #ON_DEVICE}. Only when {@link #runsStepsAhead}.
     *
     * @param previous the pass the fed rows read; null when no row is fed
     */
    default MemorySegment embedOnDevice(int rows, int[] tokens, int[] fed, int[] positions, SampledAhead previous) {
        throw new UnsupportedOperationException("this stage does not run steps ahead");
    }

    /** Rows one {@link #sampleAhead} pass takes at most (0 when the stage does not run steps ahead). */
    default int maxSampledAhead() {
        return 0;
    }

    /**
     * As {@link #sample}, returning once the pass is queued: the tokens stay on the device for the next step and come
     * to the host with {@link #awaitSampled}. Only when {@link #runsStepsAhead}; await each pass before queuing two more.
     */
    default SampledAhead sampleAhead(int[] rows, SamplingRows params) {
        throw new UnsupportedOperationException("this stage does not run steps ahead");
    }

    /** Waits for {@code pass}'s tokens (not for work queued after it) and copies them to {@code tokensOut}. */
    default void awaitSampled(SampledAhead pass, int[] tokensOut) {
        throw new UnsupportedOperationException("this stage does not run steps ahead");
    }

    // ---- output ----------------------------------------------------------------------------------------------

    /** Whether the step's rows leave as a frame of {@code codec} encoded on the device ({@link #encodeFrame}). */
    boolean encodesOnDevice(MemorySegment hidden, LinkCodec codec);

    /**
     * Encodes the device's rows into a frame of {@code codec} once the queued work is done: {@code header} sets the
     * frame's header fields on {@code writer}, wrapped there. Returns the frame, valid until the next call.
     */
    MemorySegment encodeFrame(LinkCodec codec, BatchLayout layout, long frameBytes, Consumer<LinkFrameWriter> header,
                              LinkFrameWriter writer);

    /** The step's rows on the host, copied from the device once its work is done when they were there. */
    MemorySegment hostRows(BatchLayout layout, MemorySegment hidden, Arena step);

    // ---- caches and the stage --------------------------------------------------------------------------------

    /** The sequence ended: its KV cache is freed. */
    void release(int sequenceId);

    /** Sequences holding a KV cache. */
    int cachedSequences();

    long cacheBytes();

    /** Serves {@code quantized} from now on (built after recipe calibration); no sequence may hold a cache on a GPU. */
    void rebuild(OptModel quantized);

    /** The bytes of the stage's layer weights where they run; any thread. */
    long weightBytes();

    /** KV cache positions the stage's memory holds, of the worker's {@code memoryShare} bytes. */
    long kvTokens(long memoryShare);

    /** Frees the caches and whatever the backend holds on its device; the models are the caller's. */
    @Override
    void close();
}
