package io.bitrelay.runtime.wire;

/**
 * The codec byte of a link frame. Wire ids are part of the frame format: never renumber one, only add.
 * INT4_RPTQ and INT3_RPTQ are reserved for the RPTQ codecs (per-cluster asymmetric, static channel
 * permutation from calibration); a node without their calibration plan cannot decode them.
 */
public enum CodecId {
    FP16(1, "fp16", "fp16"),
    INT8(2, "int8", "int8"),
    INT4_RPTQ(3, "int4-rptq", "int4"),
    INT3_RPTQ(4, "int3-rptq", "int3");

    private static final CodecId[] BY_WIRE_ID = new CodecId[256];

    static {
        for (CodecId id : values()) {
            BY_WIRE_ID[id.wireId] = id;
        }
    }

    private final int wireId;
    private final String codecName;
    private final String shortName;

    CodecId(int wireId, String codecName, String shortName) {
        this.wireId = wireId;
        this.codecName = codecName;
        this.shortName = shortName;
    }

    /** The value of the frame's codec byte (u8). */
    public int wireId() {
        return wireId;
    }

    /** The name used in configuration, e.g. {@code link.codec = int8}. */
    public String codecName() {
        return codecName;
    }

    /** The codec with this wire id, or null when this build does not know the id (a newer sender). */
    public static CodecId fromWireId(int wireId) {
        return wireId >= 0 && wireId < BY_WIRE_ID.length ? BY_WIRE_ID[wireId] : null;
    }

    /** The bit width alone, e.g. {@code int4} for {@code int4-rptq}; the same as the name where nothing is dropped. */
    public String shortName() {
        return shortName;
    }

    /** The codec with this configuration name or short name; the error lists the names that exist. */
    public static CodecId fromName(String codecName) {
        for (CodecId id : values()) {
            if (id.codecName.equals(codecName) || id.shortName.equals(codecName)) {
                return id;
            }
        }
        throw new IllegalArgumentException("unknown link codec '" + codecName + "', expected one of "
                + java.util.Arrays.stream(values()).map(CodecId::codecName).toList());
    }

    @Override
    public String toString() {
        return codecName + " (id " + wireId + ")";
    }
}
