package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.quant.ClusterPlan;

/**
 * The codecs every node has (FP16, INT8), and the RPTQ codecs (INT4, INT3) of a calibration plan. RPTQ
 * codecs need the plan both ends of a link share; hand them to
 * {@link LinkFrameReader#LinkFrameReader(LinkCodec...)}, e.g. {@code new LinkFrameReader(LinkCodecs.all(plan))}.
 */
public final class LinkCodecs {
    private static final LinkCodec FP16 = new Fp16Codec();
    private static final LinkCodec INT8 = new Int8TokenCodec();

    private LinkCodecs() {
    }

    public static LinkCodec forId(CodecId id) {
        return switch (id) {
            case FP16 -> FP16;
            case INT8 -> INT8;
            case INT4_RPTQ, INT3_RPTQ -> throw new IllegalArgumentException("link codec " + id
                    + " is not available on this node: RPTQ codecs need a calibration plan, see"
                    + " LinkCodecs.forId(CodecId, ClusterPlan)");
        };
    }

    /** {@code "fp16"} or {@code "int8"}. */
    public static LinkCodec forName(String codecName) {
        return forId(CodecId.fromName(codecName));
    }

    /** Any codec; RPTQ ones built from {@code plan} with {@link RptqLinkCodec.Ranges#DYNAMIC} ranges. */
    public static LinkCodec forId(CodecId id, ClusterPlan plan) {
        return forId(id, plan, RptqLinkCodec.Ranges.DYNAMIC);
    }

    public static LinkCodec forId(CodecId id, ClusterPlan plan, RptqLinkCodec.Ranges ranges) {
        return switch (id) {
            case FP16, INT8 -> forId(id);
            case INT4_RPTQ, INT3_RPTQ -> new RptqLinkCodec(id, plan, ranges);
        };
    }

    /** {@code "fp16"}, {@code "int8"}, {@code "int4"} ({@code "int4-rptq"}) or {@code "int3"} ({@code "int3-rptq"}). */
    public static LinkCodec forName(String codecName, ClusterPlan plan) {
        return forId(CodecId.fromName(codecName), plan);
    }

    /** Every codec, the RPTQ ones built from {@code plan}: what a reader on a calibrated link accepts. */
    public static LinkCodec[] all(ClusterPlan plan, RptqLinkCodec.Ranges ranges) {
        return new LinkCodec[] {FP16, INT8, new RptqLinkCodec(CodecId.INT4_RPTQ, plan, ranges),
                new RptqLinkCodec(CodecId.INT3_RPTQ, plan, ranges)};
    }

    public static LinkCodec[] all(ClusterPlan plan) {
        return all(plan, RptqLinkCodec.Ranges.DYNAMIC);
    }

    /** The codecs a reader accepts unless it is given others. */
    static LinkCodec[] builtIn() {
        return new LinkCodec[] {FP16, INT8};
    }
}
