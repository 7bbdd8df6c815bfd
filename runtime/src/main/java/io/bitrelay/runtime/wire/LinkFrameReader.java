package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.wire.FrameException.Reason;

import java.lang.foreign.MemorySegment;
import java.util.zip.CRC32C;

import static io.bitrelay.runtime.wire.LinkFrame.*;

/**
 * Reads one received {@link LinkFrame} in place. {@link #wrap} validates the whole frame before anything
 * is exposed, checking in this order: length ≥ header + CRC, magic, version, codec, section lengths
 * (against rows × width × codec and against the frame's length, which must match exactly), CRC32C, the seal
 * (with {@link #requireSeal}: a protected link; an encrypted frame is decrypted in place here), and last the codec's
 * own {@link LinkCodec#checkParams} (an RPTQ frame's calibration plan). CRC before seal: a corrupted frame still fails
 * its micro-batch at once by the CRC, while a frame with a good CRC and a bad tag was made by someone without the key.
 * The first failure throws a {@link FrameException} and leaves the reader empty. One reader per thread.
 */
public final class LinkFrameReader {
    private final LinkCodec[] codecsByWireId = new LinkCodec[256];
    private final CRC32C crc = new CRC32C();
    private FrameSeal seal; // null: a link without protection, frames carry no seal
    private MemorySegment frame; // null unless the last wrap() validated
    private LinkCodec codec;
    private int rows;
    private int width;
    private int layoutLength;
    private int paramsLength;
    private int payloadLength;

    /** A reader for the codecs every node has (FP16, INT8). */
    public LinkFrameReader() {
        this(LinkCodecs.builtIn());
    }

    /** A reader that decodes exactly these codecs, e.g. the built-ins plus a calibrated RPTQ codec. */
    public LinkFrameReader(LinkCodec... codecs) {
        for (LinkCodec c : codecs) {
            int wireId = c.id().wireId();
            if (codecsByWireId[wireId] != null) {
                throw new IllegalArgumentException("two codecs for " + c.id());
            }
            codecsByWireId[wireId] = c;
        }
    }

    /**
     * From now on every frame must carry a seal that opens with {@code seal} (the link's key and protection); returns
     * this. On an encrypted link {@link #wrap} decrypts the frame's sections in place: wrap a frame once.
     */
    public LinkFrameReader requireSeal(FrameSeal seal) {
        this.seal = seal;
        return this;
    }

    /** Validates {@code frame} (exactly one frame, no trailing bytes) and makes it the current frame. */
    public LinkFrameReader wrap(MemorySegment frame) {
        this.frame = null;
        long length = frame.byteSize();
        if (length < HEADER_BYTES + CRC_BYTES) {
            throw new FrameException(Reason.TRUNCATED, "frame of " + length + " bytes is shorter than the "
                    + HEADER_BYTES + "-byte header plus " + CRC_BYTES + "-byte CRC");
        }
        int magic = frame.get(I32, MAGIC_OFFSET);
        if (magic != MAGIC) {
            throw new FrameException(Reason.BAD_MAGIC, String.format("magic 0x%08x, expected 0x%08x ('BRLF')",
                    magic, MAGIC));
        }
        int version = Byte.toUnsignedInt(frame.get(U8, VERSION_OFFSET));
        if (version != VERSION) {
            throw new FrameException(Reason.BAD_VERSION, "frame format version " + version
                    + ", this node reads version " + VERSION);
        }
        LinkCodec frameCodec = codecFor(Byte.toUnsignedInt(frame.get(U8, CODEC_ID_OFFSET)));
        int frameRows = frame.get(I32, ROWS_OFFSET);
        int frameWidth = frame.get(I32, WIDTH_OFFSET);
        int layoutBytes = frame.get(I32, LAYOUT_LENGTH_OFFSET);
        int paramsBytes = frame.get(I32, PARAMS_LENGTH_OFFSET);
        int payloadBytes = frame.get(I32, PAYLOAD_LENGTH_OFFSET);
        int sealBytes = frame.get(I32, SEAL_LENGTH_OFFSET);
        int expectedSeal = seal == null ? 0 : seal.trailerBytes();
        if (sealBytes != expectedSeal) {
            throw new FrameException(Reason.BAD_TAG, seal == null
                    ? "frame declares a " + sealBytes + "-byte seal, this link has no key"
                    : "frame declares a " + sealBytes + "-byte seal, this link requires " + expectedSeal);
        }
        checkSizes(length - sealBytes, frameCodec, frameRows, frameWidth, layoutBytes, paramsBytes, payloadBytes);
        long crcAt = length - CRC_BYTES;
        int computedCrc = crc32c(crc, frame, crcAt);
        int carriedCrc = frame.get(I32, crcAt);
        if (computedCrc != carriedCrc) {
            throw new FrameException(Reason.BAD_CRC, String.format(
                    "crc32c 0x%08x computed over %d bytes, frame carries 0x%08x", computedCrc, crcAt, carriedCrc));
        }
        if (seal != null) {
            seal.open(frame, crcAt - sealBytes);
        }
        frameCodec.checkParams(frame.asSlice(HEADER_BYTES + (long) layoutBytes, paramsBytes), frameRows, frameWidth);
        this.codec = frameCodec;
        this.rows = frameRows;
        this.width = frameWidth;
        this.layoutLength = layoutBytes;
        this.paramsLength = paramsBytes;
        this.payloadLength = payloadBytes;
        this.frame = frame;
        return this;
    }

    public MemorySegment frame() {
        return valid();
    }

    public long frameLength() {
        return valid().byteSize();
    }

    public int version() {
        return Byte.toUnsignedInt(valid().get(U8, VERSION_OFFSET));
    }

    public CodecId codecId() {
        valid();
        return codec.id();
    }

    public LinkCodec codec() {
        valid();
        return codec;
    }

    /** Bytes of the frame's seal (tag and nonce): 0 on a link without a key. */
    public int sealBytes() {
        return valid().get(I32, SEAL_LENGTH_OFFSET);
    }

    public int flags() {
        return Short.toUnsignedInt(valid().get(U16, FLAGS_OFFSET));
    }

    public long batchId() {
        return valid().get(I64, BATCH_ID_OFFSET);
    }

    public int step() {
        return valid().get(I32, STEP_OFFSET);
    }

    public int sourceStage() {
        return Short.toUnsignedInt(valid().get(U16, SOURCE_STAGE_OFFSET));
    }

    public int targetStage() {
        return Short.toUnsignedInt(valid().get(U16, TARGET_STAGE_OFFSET));
    }

    public int rows() {
        valid();
        return rows;
    }

    public int width() {
        valid();
        return width;
    }

    public int layoutLength() {
        valid();
        return layoutLength;
    }

    public int paramsLength() {
        valid();
        return paramsLength;
    }

    public int payloadLength() {
        valid();
        return payloadLength;
    }

    /** The layout section, a slice of the frame (no copy). */
    public MemorySegment layout() {
        return valid().asSlice(HEADER_BYTES, layoutLength);
    }

    /** The layout section decoded; throws FrameException BAD_SIZES if it is not a valid BatchLayout for rows. */
    public BatchLayout batchLayout() {
        return BatchLayout.decode(layout(), rows);
    }

    public MemorySegment params() {
        return valid().asSlice(HEADER_BYTES + (long) layoutLength, paramsLength);
    }

    public MemorySegment payload() {
        return valid().asSlice(HEADER_BYTES + (long) layoutLength + paramsLength, payloadLength);
    }

    /**
     * Params and payload back to back, a slice of the frame (no copy): what a decoder elsewhere (on a GPU) takes
     * in one copy, params first. The frame has been validated, CRC and codec params included; nothing decoded.
     */
    public MemorySegment sections() {
        return valid().asSlice(sectionsOffset(), (long) paramsLength + payloadLength);
    }

    /** Where params start in the frame: header plus layout. */
    public long sectionsOffset() {
        valid();
        return HEADER_BYTES + (long) layoutLength;
    }

    /** Decodes the activations into {@code out}: rows × width FP32, native order, row-major. */
    public void decodeInto(MemorySegment out) {
        valid();
        long needed = (long) rows * width * Float.BYTES;
        if (out.byteSize() < needed) {
            throw new IllegalArgumentException("decoding " + rows + " rows × " + width + " needs " + needed
                    + " bytes, output has " + out.byteSize());
        }
        codec.decode(params(), payload(), rows, width, out);
    }

    private LinkCodec codecFor(int wireId) {
        CodecId id = CodecId.fromWireId(wireId);
        if (id == null) {
            throw new FrameException(Reason.UNKNOWN_CODEC, "codec id " + wireId + " is unknown to this node");
        }
        LinkCodec found = codecsByWireId[wireId];
        if (found == null) {
            throw new FrameException(Reason.UNKNOWN_CODEC, "codec " + id + " is not available on this node");
        }
        return found;
    }

    private static void checkSizes(long length, LinkCodec codec, int rows, int width, int layoutBytes,
                                   int paramsBytes, int payloadBytes) {
        if (rows < 1 || width < 1) {
            throw new FrameException(Reason.BAD_SIZES, "rows " + rows + " and width " + width + " must be >= 1");
        }
        if (layoutBytes < 0 || paramsBytes < 0 || payloadBytes < 0) {
            throw new FrameException(Reason.BAD_SIZES, "negative section length: layout " + layoutBytes
                    + ", params " + paramsBytes + ", payload " + payloadBytes);
        }
        long declared = LinkFrame.frameBytes(layoutBytes, paramsBytes, payloadBytes); // longs: no overflow
        if (length != declared) {
            throw new FrameException(length < declared ? Reason.TRUNCATED : Reason.BAD_SIZES, "frame of " + length
                    + " bytes declares " + declared + " (header " + HEADER_BYTES + ", layout " + layoutBytes
                    + ", params " + paramsBytes + ", payload " + payloadBytes + ", crc " + CRC_BYTES + ")");
        }
        if (length > MAX_FRAME_BYTES) {
            throw new FrameException(Reason.BAD_SIZES, "frame of " + length + " bytes exceeds the "
                    + MAX_FRAME_BYTES + "-byte maximum");
        }
        long expectedParams;
        long expectedPayload;
        try {
            expectedParams = codec.paramsBytes(rows, width);
            expectedPayload = codec.payloadBytes(rows, width);
        } catch (ArithmeticException overflow) {
            throw new FrameException(Reason.BAD_SIZES, "codec " + codec.id() + " cannot size " + rows + " rows × "
                    + width + ": " + overflow.getMessage());
        }
        if (paramsBytes != expectedParams || payloadBytes != expectedPayload) {
            throw new FrameException(Reason.BAD_SIZES, "codec " + codec.id() + " needs params " + expectedParams
                    + " and payload " + expectedPayload + " bytes for " + rows + " rows × " + width
                    + ", frame declares params " + paramsBytes + " and payload " + payloadBytes);
        }
    }

    private MemorySegment valid() {
        if (frame == null) {
            throw new IllegalStateException("no valid frame: wrap() one first (the last one may have been rejected)");
        }
        return frame;
    }
}
