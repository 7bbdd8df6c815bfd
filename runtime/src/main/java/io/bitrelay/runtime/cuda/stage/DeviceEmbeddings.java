package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.CudaEvent;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.PinnedHostBuffer;
import io.bitrelay.runtime.cuda.kernels.EmbeddingKernels;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptWeights;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The input embeddings of a stage that is first and last at once, on its GPU: with them a decode step starts from
 * the tokens the previous step sampled on the device, so the host queues step s + 1 before step s's tokens reach
 * it (vLLM's asynchronous scheduling). The token table is the LM head's tied FP16 copy (nothing more to upload);
 * the position table is FP32, as the host's. A step's row table (token, index into the sampled tokens, position)
 * goes up through two pinned halves used alternately, as the attention descriptors do.
 */
final class DeviceEmbeddings implements AutoCloseable {
    private final DeviceTensors tensors = new DeviceTensors();
    private final DeviceBuffer positions;   // (maxPositions + 2, h) FP32
    private final DeviceBuffer rowTable;    // two halves of (maxRows, 3) int32
    private final PinnedHostBuffer staging; // the same, host side
    private final long halfBytes;
    private final CudaEvent[] uploaded = new CudaEvent[2];
    private final int width;
    private final int vocab;
    private final int maxRows;
    private final int maxPositions;
    private long uploads;

    private DeviceEmbeddings(OptConfig config, OptWeights weights, int maxRows) {
        this.width = config.hiddenSize();
        this.vocab = config.vocabSize();
        this.maxRows = maxRows;
        this.maxPositions = config.maxPositions();
        this.halfBytes = (long) maxRows * EmbeddingKernels.ROW_WORDS * Integer.BYTES;
        PinnedHostBuffer pinned = null;
        try {
            long positionValues = (long) (config.maxPositions() + OptConfig.POSITION_OFFSET) * width;
            positions = tensors.allocate(positionValues * Float.BYTES);
            positions.copyFromHost(weights.positionEmbeddings().asSlice(0, positionValues * Float.BYTES));
            rowTable = tensors.allocate(2 * halfBytes);
            pinned = PinnedHostBuffer.allocate(2 * halfBytes);
            uploaded[0] = CudaEvent.create();
            uploaded[1] = CudaEvent.create();
        } catch (RuntimeException e) {
            closeEvents();
            if (pinned != null) {
                pinned.close();
            }
            tensors.close();
            throw e;
        }
        this.staging = pinned;
    }

    /** Whether a stage of {@code weights} can embed its own inputs on the device: it owns them, with no project_in. */
    static boolean supports(OptWeights weights) {
        return weights.range().ownsEmbeddings() && weights.positionEmbeddings() != null && weights.projectIn() == null
                && weights.config().wordEmbedProjDim() == weights.config().hiddenSize();
    }

    static DeviceEmbeddings upload(OptConfig config, OptWeights weights, int maxRows) {
        if (!supports(weights)) {
            throw new IllegalArgumentException("stage " + weights.range() + " cannot embed its inputs on the device");
        }
        return new DeviceEmbeddings(config, weights, maxRows);
    }

    /**
     * Queues the embeddings of {@code rows} rows into {@code hidden}: row r is token {@code tokens[r]}, or when
     * {@code fed[r] >= 0} the {@code fed[r]}-th token at {@code sampled} on the device, at position
     * {@code positions[r]}.
     */
    void queue(StageCompute c, DeviceBuffer tokenTable, DeviceBuffer hidden, int rows, int[] tokens, int[] fed,
               int[] positions, long sampled) {
        if (rows < 1 || rows > maxRows) {
            throw new IllegalArgumentException("a step of " + rows + " rows; the stage holds 1.." + maxRows);
        }
        int half = (int) (uploads++ & 1);
        uploaded[half].synchronize(); // the half's previous upload (two steps ago) has left it
        MemorySegment table = staging.segment().asSlice(half * halfBytes, halfBytes);
        for (int r = 0; r < rows; r++) {
            if (positions[r] < 0 || positions[r] >= maxPositions) {
                throw new IllegalArgumentException("row " + r + ": position " + positions[r] + " outside the context of "
                        + maxPositions);
            }
            if (fed[r] < 0 && (tokens[r] < 0 || tokens[r] >= vocab)) {
                throw new IllegalArgumentException("token id " + tokens[r] + " is outside the vocabulary of " + vocab);
            }
            if (fed[r] >= 0 && sampled == 0) {
                throw new IllegalArgumentException("row " + r + " is fed a sampled token, but no sampling pass is given");
            }
            long at = (long) r * EmbeddingKernels.ROW_WORDS * Integer.BYTES;
            table.set(ValueLayout.JAVA_INT, at, tokens[r]);
            table.set(ValueLayout.JAVA_INT, at + Integer.BYTES, fed[r]);
            table.set(ValueLayout.JAVA_INT, at + 2L * Integer.BYTES, positions[r]);
        }
        long bytes = (long) rows * EmbeddingKernels.ROW_WORDS * Integer.BYTES;
        rowTable.copyFromHostAsync(staging, half * halfBytes, half * halfBytes, bytes, c.stream);
        uploaded[half].record(c.stream);
        c.embedding.embed(tokenTable.address(), this.positions.address(), rowTable.address() + half * halfBytes, sampled,
                hidden.address(), rows, width, vocab, c.stream);
    }

    long deviceBytes() {
        return tensors.bytes();
    }

    private void closeEvents() {
        for (CudaEvent event : uploaded) {
            if (event != null) {
                event.close();
            }
        }
    }

    @Override
    public void close() {
        closeEvents();
        if (staging != null) {
            staging.close();
        }
        tensors.close();
    }
}
