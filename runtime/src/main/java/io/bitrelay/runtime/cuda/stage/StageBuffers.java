package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.CudaEvent;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.PinnedHostBuffer;
import io.bitrelay.runtime.cuda.kernels.AttentionKernels;
import io.bitrelay.runtime.model.opt.OptConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * Every device and pinned buffer a stage step uses, allocated once for {@code maxRows} rows (the stage's max
 * batch tokens) so that a step allocates nothing. Buffers a recipe does not use are not allocated (address 0).
 * Shapes in rows × columns; h = hidden, f = ffn.
 */
final class StageBuffers implements AutoCloseable {
    private final List<AutoCloseable> owned = new ArrayList<>();

    final DeviceBuffer hidden;      // (maxRows, h) FP32, the residual stream
    final PinnedHostBuffer staging; // (maxRows, h) FP32, host side of the hidden-state copies
    final DeviceBuffer qkv;         // (maxRows, 3h) FP16, q (scaled) | k | v
    final DeviceBuffer attention;   // (maxRows, h) FP16, heads concatenated
    final DeviceBuffer normed;      // FP16: (maxRows, h) FP16 LayerNorm output; W8A8: unused
    final DeviceBuffer projected;   // FP16: (maxRows, h) FP16 out_proj / fc2 output; W8A8: unused
    final DeviceBuffer ffn;         // FP16: (maxRows, f) FP16 fc1 output; W8A8: unused (fc1's epilogue writes INT8 codes)
    final DeviceBuffer codes;       // W8A8: (maxRows, max(h, f)) INT8 activations
    final DeviceBuffer rowScales;   // W8A8: (maxRows) FP32 per-token scales
    final DeviceBuffer accumulators; // W8A8: (maxRows, max(3h, f)) INT32 GEMM output
    final DeviceBuffer partialO;    // decode split-K workspace: (splits, heads, headDim) FP32
    final DeviceBuffer partialMl;   // (splits, heads, 2) FP32
    final DeviceBuffer descriptors; // (layers, maxRows) AttentionSeq
    final PinnedHostBuffer descriptorStaging; // two halves of (layers, maxRows) AttentionSeq, used alternately
    final long descriptorHalfBytes;
    final CudaEvent[] descriptorUploaded = new CudaEvent[2]; // recorded after each half's upload
    final int maxRows;

    StageBuffers(OptConfig config, int layers, StageRecipe recipe, int maxRows, int maxPositions, int multiprocessors,
                 CudaStream stream) {
        this.maxRows = maxRows;
        long h = config.hiddenSize();
        long f = config.ffnDim();
        long rows = maxRows;
        try {
            hidden = device(rows * h * Float.BYTES, stream);
            staging = pinned(rows * h * Float.BYTES);
            qkv = device(rows * 3 * h * Short.BYTES, stream);
            attention = device(rows * h * Short.BYTES, stream);
            boolean w8a8 = recipe == StageRecipe.W8A8;
            normed = w8a8 ? null : device(rows * h * Short.BYTES, stream);
            projected = w8a8 ? null : device(rows * h * Short.BYTES, stream);
            ffn = w8a8 ? null : device(rows * f * Short.BYTES, stream);
            codes = w8a8 ? device(rows * Math.max(h, f), stream) : null;
            rowScales = w8a8 ? device(rows * Float.BYTES, stream) : null;
            accumulators = w8a8 ? device(rows * Math.max(3 * h, f) * Integer.BYTES, stream) : null;
            long splits = AttentionKernels.decodeWorkspaceSplits(maxRows, config.numHeads(), maxPositions, multiprocessors);
            partialO = device(splits * h * Float.BYTES, stream);
            partialMl = device(splits * config.numHeads() * 2L * Float.BYTES, stream);
            descriptors = device((long) layers * maxRows * AttentionKernels.DESCRIPTOR_BYTES, stream);
            descriptorHalfBytes = (long) layers * maxRows * AttentionKernels.DESCRIPTOR_BYTES;
            descriptorStaging = pinned(2 * descriptorHalfBytes);
            for (int i = 0; i < 2; i++) {
                descriptorUploaded[i] = CudaEvent.create();
                owned.add(descriptorUploaded[i]);
                descriptorUploaded[i].record(stream);
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        stream.synchronize();
    }

    /** Device bytes of the activation buffers (what a stage needs besides weights and KV caches). */
    long deviceBytes() {
        long total = 0;
        for (AutoCloseable resource : owned) {
            if (resource instanceof DeviceBuffer buffer) {
                total += buffer.byteSize();
            }
        }
        return total;
    }

    static long address(DeviceBuffer buffer) {
        return buffer == null ? 0 : buffer.address();
    }

    /** Zeroed, so that the padding rows of a bucketed GEMM read finite values. */
    private DeviceBuffer device(long bytes, CudaStream stream) {
        DeviceBuffer buffer = DeviceBuffer.allocate(bytes);
        owned.add(buffer);
        buffer.fill((byte) 0, stream);
        return buffer;
    }

    private PinnedHostBuffer pinned(long bytes) {
        PinnedHostBuffer buffer = PinnedHostBuffer.allocate(bytes);
        owned.add(buffer);
        return buffer;
    }

    @Override
    public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                throw new IllegalStateException("freeing a stage buffer", e);
            }
        }
        owned.clear();
    }
}
