package io.bitrelay.runtime.cuda.link;

import io.bitrelay.runtime.cuda.kernels.LinkCodecKernels;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.RptqLinkCodec;

import io.bitrelay.runtime.wire.CodecId;

import java.util.EnumMap;
import java.util.Map;

/**
 * The device encoders and decoders a GPU stage's links use, one pair per codec id, made on first use in the
 * stage's context: a stage receives FP16 frames while calibrating and its link codec afterwards, and an RPTQ
 * pair is replaced when a codec with another cluster plan arrives (the old plan's device copy is freed with it).
 * Codecs the kernels cannot run ({@link #runsOnDevice}) stay with the Java codecs on the host.
 *
 * <p>Used from the stage's compute thread only, with the stage's context current.
 */
public final class GpuFrameCodecs implements AutoCloseable {
    private final LinkCodecKernels kernels;
    private final int width;
    private final int maxRows;
    private final Map<CodecId, Ends> ends = new EnumMap<>(CodecId.class);

    /** Both ends of one codec, and the cluster plan on the device they read (RPTQ only). */
    private record Ends(LinkCodec codec, GpuLinkEncoder encoder, GpuLinkDecoder decoder, DeviceClusterPlan plan)
            implements AutoCloseable {
        @Override
        public void close() {
            encoder.close();
            decoder.close();
            if (plan != null) {
                plan.close();
            }
        }
    }

    public GpuFrameCodecs(LinkCodecKernels kernels, int width, int maxRows) {
        this.kernels = kernels;
        this.width = width;
        this.maxRows = maxRows;
    }

    /** True for FP16 and INT8, and for RPTQ with per-token (dynamic) ranges: what the link kernels implement. */
    public static boolean runsOnDevice(LinkCodec codec, int width) {
        return switch (codec.id()) {
            case FP16, INT8 -> true;
            case INT4_RPTQ, INT3_RPTQ -> codec instanceof RptqLinkCodec rptq
                    && rptq.ranges() == RptqLinkCodec.Ranges.DYNAMIC && width <= LinkCodecKernels.MAX_RPTQ_WIDTH;
        };
    }

    public GpuLinkEncoder encoder(LinkCodec codec) {
        return endsOf(codec).encoder();
    }

    public GpuLinkDecoder decoder(LinkCodec codec) {
        return endsOf(codec).decoder();
    }

    /** Codecs with device ends now (for tests and the stage's description). */
    public int size() {
        return ends.size();
    }

    private Ends endsOf(LinkCodec codec) {
        Ends held = ends.get(codec.id());
        if (held != null && sameCoding(held.codec(), codec)) {
            return held;
        }
        if (!runsOnDevice(codec, width)) {
            throw new IllegalArgumentException(codec.id() + " frames of width " + width + " cannot be coded on the GPU"
                    + " (RPTQ kernels take dynamic ranges up to width " + LinkCodecKernels.MAX_RPTQ_WIDTH + ")");
        }
        if (held != null) {
            ends.remove(codec.id()).close();
        }
        DeviceClusterPlan plan = codec instanceof RptqLinkCodec rptq ? DeviceClusterPlan.upload(rptq.plan()) : null;
        GpuLinkEncoder encoder = null;
        try {
            GpuLinkCodec gpuCodec = GpuLinkCodec.of(codec, kernels, plan);
            encoder = new GpuLinkEncoder(gpuCodec, width, maxRows);
            Ends made = new Ends(codec, encoder, new GpuLinkDecoder(gpuCodec, width, maxRows), plan);
            ends.put(codec.id(), made);
            return made;
        } catch (RuntimeException e) {
            if (encoder != null) {
                encoder.close();
            }
            if (plan != null) {
                plan.close();
            }
            throw e;
        }
    }

    /** FP16 and INT8 codecs hold no state; RPTQ codecs code alike when their cluster plans are the same. */
    private static boolean sameCoding(LinkCodec held, LinkCodec codec) {
        if (held == codec || !(held instanceof RptqLinkCodec heldRptq)) {
            return true;
        }
        return codec instanceof RptqLinkCodec rptq && rptq.ranges() == heldRptq.ranges()
                && rptq.plan().equals(heldRptq.plan());
    }

    @Override
    public void close() {
        ends.values().forEach(Ends::close);
        ends.clear();
    }
}
