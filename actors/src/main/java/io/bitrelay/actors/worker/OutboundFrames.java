package io.bitrelay.actors.worker;

import io.bitrelay.actors.dataplane.DataPlane;
import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.LinkFrameWriter;
import io.bitrelay.runtime.wire.LinkStats;
import io.bitrelay.runtime.wire.RptqLinkCodec;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The frames a stage sends to the next one: each step's rows encoded with the link's codec (on the device when the
 * backend keeps them there and its kernels run the codec, else on the host into a reused buffer), calibration
 * frames as flagged FP16, an injected fault, the link's counters, and the per-channel range of what link
 * calibration sent (for the link's cluster plan). The last stage sends none: its sender is null. Compute thread,
 * except {@link #injectFault} (the actor) and {@link #counters} (stats readers).
 */
final class OutboundFrames implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(OutboundFrames.class);

    private final StageAssignment assignment;
    private final StageBackend backend;
    private final int width;
    /** Null on the last stage. */
    private final DataPlane.FrameSender sender;
    /** The outbound link's codec; an RPTQ link sends FP16 until its cluster plan arrives from calibration. */
    private volatile LinkCodec codec;
    private final LinkFrameWriter writer = new LinkFrameWriter();
    /** Per-channel range of the hidden states sent in calibration batches, for the link's cluster plan. */
    private final float[] sentMin;
    private final float[] sentMax;
    private final LinkStats stats = new LinkStats();
    private volatile FrameFault pendingFault;
    private Arena sendArena = Arena.ofShared();
    private MemorySegment sendBuffer = MemorySegment.NULL;

    /** @param width the hidden size, the width of every row sent */
    OutboundFrames(StageAssignment assignment, StageBackend backend, int width, DataPlane dataPlane) {
        this.assignment = assignment;
        this.backend = backend;
        this.width = width;
        CodecId codecId = CodecId.fromName(assignment.linkCodec());
        this.codec = needsPlan(codecId) ? LinkCodecs.forId(CodecId.FP16) : LinkCodecs.forId(codecId);
        this.sentMin = new float[width];
        this.sentMax = new float[width];
        java.util.Arrays.fill(sentMin, Float.POSITIVE_INFINITY);
        java.util.Arrays.fill(sentMax, Float.NEGATIVE_INFINITY);
        this.sender = assignment.outbound() == null ? null : dataPlane.sender(assignment.outbound());
        if (assignment.linkKey() != null && assignment.outbound() != null) {
            writer.sealWith(assignment.linkKey().seal(assignment.stageIndex(), assignment.stageIndex() + 1));
        }
    }

    static boolean needsPlan(CodecId id) {
        return id == CodecId.INT4_RPTQ || id == CodecId.INT3_RPTQ;
    }

    /** Sends a serving step's rows ({@code hidden} as the backend's layers left them). */
    void send(long batchId, int stepNumber, BatchLayout layout, MemorySegment hidden, Arena step) {
        LinkCodec frameCodec = codec;
        if (!backend.encodesOnDevice(hidden, frameCodec)) {
            sendFromHost(batchId, stepNumber, false, frameCodec, layout, backend.hostRows(layout, hidden, step));
            return;
        }
        long frameBytes = LinkFrame.frameBytes(frameCodec, layout.encodedBytes(), layout.tokens(), width) + writer.sealBytes();
        MemorySegment frame = backend.encodeFrame(frameCodec, layout, frameBytes,
                w -> header(w, batchId, stepNumber, false), writer);
        dispatch(batchId, false, frame, frame.byteSize());
    }

    /**
     * Sends a calibration step's host rows. Calibration frames always go as FP16 and are flagged, so the receiver
     * treats them as calibration too.
     *
     * @param linkCalibration the rows are what the link will carry, so their ranges count for its cluster plan
     *                        (recipe calibration runs the FP32 stage instead)
     */
    void sendCalibration(long batchId, int stepNumber, BatchLayout layout, MemorySegment hidden, boolean linkCalibration) {
        if (linkCalibration) {
            recordSentRanges(hidden, layout.tokens());
        }
        sendFromHost(batchId, stepNumber, true, LinkCodecs.forId(CodecId.FP16), layout, hidden);
    }

    private void recordSentRanges(MemorySegment hidden, int rows) {
        for (int row = 0; row < rows; row++) {
            for (int channel = 0; channel < width; channel++) {
                float value = hidden.getAtIndex(ValueLayout.JAVA_FLOAT, (long) row * width + channel);
                sentMin[channel] = Math.min(sentMin[channel], value);
                sentMax[channel] = Math.max(sentMax[channel], value);
            }
        }
    }

    private void sendFromHost(long batchId, int stepNumber, boolean calibration, LinkCodec frameCodec, BatchLayout layout,
                              MemorySegment hidden) {
        int rows = layout.tokens();
        long frameBytes = LinkFrame.frameBytes(frameCodec, layout.encodedBytes(), rows, width) + writer.sealBytes();
        ensureSendBuffer(frameBytes);
        long length = header(writer.wrap(sendBuffer), batchId, stepNumber, calibration)
                .encode(frameCodec, layout, hidden, rows, width);
        dispatch(batchId, calibration, sendBuffer, length);
    }

    private LinkFrameWriter header(LinkFrameWriter wrapped, long batchId, int stepNumber, boolean calibration) {
        return wrapped.batchId(batchId).step(stepNumber).stages(assignment.stageIndex(), assignment.stageIndex() + 1)
                .flags(calibration ? StageEngine.FLAG_CALIBRATION : 0);
    }

    /** Counts a written frame, applies an injected fault to it, and sends it on. */
    private void dispatch(long batchId, boolean calibration, MemorySegment buffer, long length) {
        if (!calibration) {
            stats.recordFrame(writer);
        }
        FrameFault fault = pendingFault;
        if (fault != null) {
            pendingFault = null;
            LOG.warn("stage {}: injected fault {} into micro-batch {}", assignment.stageIndex(), fault, batchId);
            if (fault.addsFrame()) {
                try (Arena extra = Arena.ofConfined()) {
                    MemorySegment other = fault.extraFrame(buffer, length, writer.sealBytes(), extra);
                    boolean forgedFirst = fault == FrameFault.FORGE; // a replay can only follow what it copies
                    sender.send(forgedFirst ? other : buffer, length);
                    sender.send(forgedFirst ? buffer : other, length);
                }
                return;
            } else {
                length = fault.apply(buffer, length, LinkFrame.VERSION_OFFSET);
            }
        }
        sender.send(buffer, length);
    }

    private void ensureSendBuffer(long bytes) {
        if (sendBuffer.byteSize() >= bytes) {
            return;
        }
        sendArena.close();
        sendArena = Arena.ofShared();
        sendBuffer = sendArena.allocate(Math.max(bytes, 2 * sendBuffer.byteSize()), 64);
    }

    /** Corrupts the next frame sent. */
    void injectFault(FrameFault fault) {
        pendingFault = fault;
    }

    /** Encodes with the link's cluster plan from now on. */
    void usePlan(ClusterPlan plan, RptqLinkCodec.Ranges ranges) {
        codec = LinkCodecs.forId(CodecId.fromName(assignment.linkCodec()), plan, ranges);
    }

    /** What link calibration sent so far. */
    StageWorker.LinkRanges sentRanges() {
        return new StageWorker.LinkRanges(assignment.stageIndex(), sentMin.clone(), sentMax.clone());
    }

    /** The link's counters; only on a stage with an outbound link. */
    StageStats.LinkCounters counters() {
        LinkStats.Snapshot s = stats.snapshot();
        return new StageStats.LinkCounters(assignment.stageIndex(), assignment.stageIndex() + 1, codec.id().codecName(),
                s.frames(), s.tokens(), s.payloadBytes(), s.wireBytes(), s.fp16WireBytes(), sender.backPressureEvents());
    }

    @Override
    public void close() {
        if (sender != null) {
            sender.close();
        }
        sendArena.close();
    }
}
