package io.bitrelay.runtime.cuda.link;

import io.bitrelay.runtime.cuda.CudaEvent;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.PinnedHostBuffer;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkFrameWriter;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Encodes hidden rows held on the device into a link frame's params and payload, so only the packed sections
 * cross PCIe: one kernel into a device staging area, then one asynchronous device-to-host copy of params and
 * payload, back to back, into pinned memory (where a {@link LinkFrameWriter} has reserved them), plus a 4-byte
 * copy of the kernel's non-finite flag. FP16 rows through the FP16 codec skip the kernel and are copied as they
 * are. The frame bytes equal the Java codec's for the same FP32 rows (FP16 rows: for their values widened).
 *
 * <p>Owns its device staging, the flag (device and pinned) and an event until {@link #close()}. One frame at a
 * time: {@link #awaitEncoded()} (or {@link #writeFrame}) before the next {@link #encodeAsync}.
 */
public final class GpuLinkEncoder implements AutoCloseable {
    private final GpuLinkCodec gpuCodec;
    private final LinkCodec codec;
    private final int width;
    private final int maxRows;
    private final DeviceBuffer staging;     // params | payload of up to maxRows rows (see LinkStaging)
    private final DeviceBuffer status;      // (1) int: the kernels OR 1 in for a non-finite row
    private final PinnedHostBuffer statusHost;
    private final CudaEvent encoded;
    private boolean pending;

    /** Staging for up to {@code maxRows} rows of {@code width}, in the current context. */
    public GpuLinkEncoder(GpuLinkCodec gpuCodec, int width, int maxRows) {
        if (width < 1 || maxRows < 1) {
            throw new IllegalArgumentException("a GPU link encoder needs width >= 1 and maxRows >= 1, got " + width
                    + " and " + maxRows);
        }
        this.gpuCodec = gpuCodec;
        this.codec = gpuCodec.codec();
        this.width = width;
        this.maxRows = maxRows;
        DeviceBuffer stagingBuffer = null;
        DeviceBuffer statusBuffer = null;
        PinnedHostBuffer statusPinned = null;
        try {
            stagingBuffer = DeviceBuffer.allocate(Math.max(16, LinkStaging.stagingBytes(codec, width, maxRows)));
            statusBuffer = DeviceBuffer.allocate(Integer.BYTES);
            statusPinned = PinnedHostBuffer.allocate(Integer.BYTES);
            this.encoded = CudaEvent.create();
        } catch (RuntimeException e) {
            closeAll(stagingBuffer, statusBuffer, statusPinned);
            throw e;
        }
        this.staging = stagingBuffer;
        this.status = statusBuffer;
        this.statusHost = statusPinned;
    }

    public LinkCodec codec() {
        return codec;
    }

    /**
     * The whole frame: reserves the sections on {@code writer} (wrapped on memory inside {@code target}, header
     * fields set), encodes into them, waits, checks the rows were finite and seals; returns the frame's length.
     */
    public long writeFrame(LinkFrameWriter writer, PinnedHostBuffer target, BatchLayout layout, DeviceBuffer hidden,
                           long hiddenOffset, DType inputType, int rows, CudaStream stream) {
        MemorySegment sections = writer.reserveSections(codec, layout, rows, width);
        encodeAsync(hidden, hiddenOffset, inputType, rows, target, LinkStaging.offsetIn(target, sections,
                "the writer's reserved sections"), stream);
        awaitEncoded();
        return writer.seal();
    }

    /**
     * Queues on {@code stream}: the encode of (rows, width) rows of {@code inputType} at {@code hiddenOffset} of
     * {@code hidden}, and the copy of params then payload into {@code target} at {@code targetOffset}.
     */
    public void encodeAsync(DeviceBuffer hidden, long hiddenOffset, DType inputType, int rows, PinnedHostBuffer target,
                            long targetOffset, CudaStream stream) {
        if (pending) {
            throw new IllegalStateException("the previous encode was not awaited: awaitEncoded() before the next one");
        }
        LinkStaging.checkShape(codec.id() + " GPU encode", rows, width, maxRows, width);
        LinkStaging.checkRows(codec.id() + " GPU encode input", hidden, hiddenOffset, inputType, rows, width);
        long sectionBytes = LinkStaging.sectionBytes(codec, rows, width);
        if (gpuCodec.encodesAsCopy(inputType)) {
            hidden.copyToHostAsync(target, targetOffset, hiddenOffset, sectionBytes, stream);
        } else {
            long paramsOffset = LinkStaging.paramsOffset(codec, rows, width);
            long payloadOffset = LinkStaging.payloadOffset(codec, rows, width);
            status.fill((byte) 0, stream);
            gpuCodec.encode(inputType, hidden.address() + hiddenOffset, rows, width, staging.address() + paramsOffset,
                    staging.address() + payloadOffset, status.address(), stream);
            staging.copyToHostAsync(target, targetOffset, paramsOffset, sectionBytes, stream);
            status.copyToHostAsync(statusHost, 0, 0, Integer.BYTES, stream);
        }
        encoded.record(stream);
        pending = true;
    }

    /** Waits for the last {@link #encodeAsync}; refuses it, as the Java codecs do, if a row held NaN or ±Inf. */
    public void awaitEncoded() {
        if (!pending) {
            throw new IllegalStateException("no encode queued since the last awaitEncoded()");
        }
        encoded.synchronize();
        pending = false;
        int flag = statusHost.segment().get(ValueLayout.JAVA_INT, 0);
        statusHost.segment().set(ValueLayout.JAVA_INT, 0, 0); // the FP16 path sets no flag: start the next one clear
        if (flag != 0) {
            throw new IllegalArgumentException("a row of the hidden states holds NaN or ±Inf; the " + codec.id()
                    + " link codec cannot carry non-finite values (frame refused)");
        }
    }

    @Override
    public void close() {
        closeAll(staging, status, statusHost);
        encoded.close();
    }

    private static void closeAll(AutoCloseable... resources) {
        for (AutoCloseable resource : resources) {
            if (resource != null) {
                try {
                    resource.close();
                } catch (Exception e) {
                    throw new IllegalStateException("closing " + resource + ": " + e.getMessage(), e);
                }
            }
        }
    }
}
