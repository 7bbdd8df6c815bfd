package io.bitrelay.runtime.wire;

/**
 * The codecs every node has. RPTQ codecs are not here: they are built from a calibration plan by whoever
 * loads it, and handed to {@link LinkFrameReader#LinkFrameReader(LinkCodec...)}.
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
                    + " is not available on this node: RPTQ codecs need a calibration plan and are not built"
                    + " by LinkCodecs");
        };
    }

    /** {@code "fp16"} or {@code "int8"}. */
    public static LinkCodec forName(String codecName) {
        return forId(CodecId.fromName(codecName));
    }

    /** The codecs a reader accepts unless it is given others. */
    static LinkCodec[] builtIn() {
        return new LinkCodec[] {FP16, INT8};
    }
}
