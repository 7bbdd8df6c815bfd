package io.bitrelay.runtime.cuda.link;

import io.bitrelay.runtime.cuda.CudaEvent;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.PinnedHostBuffer;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkFrameReader;

import java.lang.foreign.MemorySegment;

/**
 * Decodes a received link frame on the device: the frame is validated on the host by a {@link LinkFrameReader}
 * (CRC, sizes, codec params) and never decoded there; its params and payload, back to back, cross PCIe in one
 * asynchronous host-to-device copy, and a kernel writes the hidden rows (FP32: bit-identical to the Java decode;
 * FP16: its values rounded to nearest). The FP16 codec into FP16 rows is the copy alone.
 *
 * <p>A frame held in pinned memory is copied straight from there; any other frame (an Aeron term buffer, a heap
 * array) is first copied on the host into this decoder's pinned staging. Owns its device and pinned staging and
 * an event until {@link #close()}.
 */
public final class GpuLinkDecoder implements AutoCloseable {
    private final GpuLinkCodec gpuCodec;
    private final LinkCodec codec;
    private final int width;
    private final int maxRows;
    private final DeviceBuffer staging;        // params | payload of up to maxRows rows (see LinkStaging)
    private final PinnedHostBuffer hostStaging; // params | payload, for frames not in pinned memory
    private final CudaEvent copied;            // the last host-to-device copy out of hostStaging is done

    /** Staging for up to {@code maxRows} rows of {@code width}, in the current context. */
    public GpuLinkDecoder(GpuLinkCodec gpuCodec, int width, int maxRows) {
        if (width < 1 || maxRows < 1) {
            throw new IllegalArgumentException("a GPU link decoder needs width >= 1 and maxRows >= 1, got " + width
                    + " and " + maxRows);
        }
        this.gpuCodec = gpuCodec;
        this.codec = gpuCodec.codec();
        this.width = width;
        this.maxRows = maxRows;
        DeviceBuffer device = DeviceBuffer.allocate(Math.max(16, LinkStaging.stagingBytes(codec, width, maxRows)));
        PinnedHostBuffer host = null;
        try {
            host = PinnedHostBuffer.allocate(Math.max(16, LinkStaging.sectionBytes(codec, maxRows, width)));
            this.copied = CudaEvent.create();
        } catch (RuntimeException e) {
            device.close();
            if (host != null) {
                host.close();
            }
            throw e;
        }
        this.staging = device;
        this.hostStaging = host;
    }

    public LinkCodec codec() {
        return codec;
    }

    /**
     * Queues the decode of the frame {@code reader} validated, wherever it lives, into (rows, width) rows of
     * {@code outputType} at {@code outOffset} of {@code out}. The frame's memory may be reused once this returns.
     */
    public void decodeAsync(LinkFrameReader reader, DType outputType, DeviceBuffer out, long outOffset, CudaStream stream) {
        check(reader, outputType, out, outOffset);
        MemorySegment sections = reader.sections();
        copied.synchronize(); // the previous frame's copy has left the staging
        MemorySegment.copy(sections, 0, hostStaging.segment(), 0, sections.byteSize());
        decodeFrom(hostStaging, 0, reader.rows(), outputType, out, outOffset, stream);
    }

    /**
     * As {@link #decodeAsync(LinkFrameReader, DType, DeviceBuffer, long, CudaStream)} for a frame held in
     * {@code frameBuffer} (pinned): one copy straight from the frame; keep the frame until the stream has run it.
     */
    public void decodeAsync(LinkFrameReader reader, PinnedHostBuffer frameBuffer, DType outputType, DeviceBuffer out,
                            long outOffset, CudaStream stream) {
        check(reader, outputType, out, outOffset);
        long offset = LinkStaging.offsetIn(frameBuffer, reader.sections(), "the frame's params and payload");
        decodeFrom(frameBuffer, offset, reader.rows(), outputType, out, outOffset, stream);
    }

    private void check(LinkFrameReader reader, DType outputType, DeviceBuffer out, long outOffset) {
        if (reader.codecId() != codec.id()) {
            throw new IllegalArgumentException("frame carries " + reader.codecId() + ", this GPU decoder decodes "
                    + codec.id());
        }
        int rows = reader.rows();
        LinkStaging.checkShape(codec.id() + " GPU decode", rows, reader.width(), maxRows, width);
        LinkStaging.checkRows(codec.id() + " GPU decode output", out, outOffset, outputType, rows, width);
        // the reader checked params against its own codec; the device plan must be this codec's (RPTQ fingerprint)
        codec.checkParams(reader.params(), rows, width);
    }

    private void decodeFrom(PinnedHostBuffer source, long sourceOffset, int rows, DType outputType, DeviceBuffer out,
                            long outOffset, CudaStream stream) {
        long sectionBytes = LinkStaging.sectionBytes(codec, rows, width);
        if (gpuCodec.decodesAsCopy(outputType)) {
            out.copyFromHostAsync(source, sourceOffset, outOffset, sectionBytes, stream);
            copied.record(stream);
            return;
        }
        long paramsOffset = LinkStaging.paramsOffset(codec, rows, width);
        long payloadOffset = LinkStaging.payloadOffset(codec, rows, width);
        staging.copyFromHostAsync(source, sourceOffset, paramsOffset, sectionBytes, stream);
        copied.record(stream);
        gpuCodec.decode(staging.address() + paramsOffset, staging.address() + payloadOffset, rows, width, outputType,
                out.address() + outOffset, stream);
    }

    @Override
    public void close() {
        staging.close();
        hostStaging.close();
        copied.close();
    }
}
