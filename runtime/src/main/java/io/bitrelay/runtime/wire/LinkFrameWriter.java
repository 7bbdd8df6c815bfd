package io.bitrelay.runtime.wire;

import java.lang.foreign.MemorySegment;
import java.util.zip.CRC32C;

import static io.bitrelay.runtime.wire.LinkFrame.*;

/**
 * Writes one {@link LinkFrame} into a caller-owned buffer: {@link #wrap} it, set the header fields, then
 * {@link #encode} the layout and activations, which also seals the frame (on a protected link) and checksums it. Setters write
 * straight into the buffer (a flyweight); nothing is allocated per frame beyond a ByteBuffer view for
 * the CRC. One writer per thread.
 *
 * <pre>{@code
 * long frameLength = writer.wrap(buffer).batchId(batch).step(step).stages(0, 1)
 *         .encode(codec, layout, hiddenStates, rows, hidden);
 * publication.offer(buffer, 0, frameLength);   // or writer.frame()
 * }</pre>
 *
 * Params and payload encoded elsewhere (on a GPU) go in two ways: {@link #writeEncoded} copies them in, or
 * {@link #reserveSections} writes header and layout and hands out the sections for someone else to fill (a
 * device-to-host copy), after which {@link #seal} checksums the frame. Either way the frame is byte-identical
 * to what {@code encode} writes when the sections are what the codec would have encoded.
 */
public final class LinkFrameWriter {
    private final CRC32C crc = new CRC32C();
    private FrameSeal seal; // null: frames carry no seal
    private MemorySegment buffer;
    private long frameLength;
    private int rows;
    private int width;
    private int layoutLength;
    private long payloadLength;
    private LinkCodec reservedFor; // non-null between reserveSections() and seal()

    /** From now on every frame is sealed with {@code seal} (the link's key and protection); returns this. */
    public LinkFrameWriter sealWith(FrameSeal seal) {
        this.seal = seal;
        return this;
    }

    /** Bytes the seal adds to every frame: 0 on a link without protection. */
    public int sealBytes() {
        return seal == null ? 0 : seal.trailerBytes();
    }

    /** Starts a frame at offset 0 of {@code buffer}; header fields not set later stay 0. */
    public LinkFrameWriter wrap(MemorySegment buffer) {
        if (buffer.byteSize() < HEADER_BYTES + CRC_BYTES) {
            throw new IllegalArgumentException("a link frame buffer needs at least " + (HEADER_BYTES + CRC_BYTES)
                    + " bytes, got " + buffer.byteSize());
        }
        this.buffer = buffer;
        this.frameLength = 0;
        this.reservedFor = null;
        buffer.asSlice(0, HEADER_BYTES).fill((byte) 0);
        buffer.set(I32, MAGIC_OFFSET, MAGIC);
        buffer.set(U8, VERSION_OFFSET, (byte) VERSION);
        return this;
    }

    public LinkFrameWriter batchId(long batchId) {
        buffer.set(I64, BATCH_ID_OFFSET, batchId);
        return this;
    }

    public LinkFrameWriter step(int step) {
        buffer.set(I32, STEP_OFFSET, step);
        return this;
    }

    public LinkFrameWriter stages(int sourceStage, int targetStage) {
        buffer.set(U16, SOURCE_STAGE_OFFSET, u16("source stage", sourceStage));
        buffer.set(U16, TARGET_STAGE_OFFSET, u16("target stage", targetStage));
        return this;
    }

    public LinkFrameWriter flags(int flags) {
        buffer.set(U16, FLAGS_OFFSET, u16("flags", flags));
        return this;
    }

    /** Writes layout, params, payload and CRC; returns the frame's length in bytes. */
    public long encode(LinkCodec codec, BatchLayout layout, MemorySegment activations, int rows, int width) {
        if (layout.tokens() != rows) {
            throw new IllegalArgumentException("batch layout carries " + layout.tokens() + " tokens, frame has "
                    + rows + " rows");
        }
        int layoutBytes = layout.encodedBytes();
        writeHeader(codec, layoutBytes, activations, rows, width);
        layout.encodeInto(buffer.asSlice(HEADER_BYTES, layoutBytes));
        return encodeSections(codec, activations);
    }

    /**
     * Writes a frame around params and payload that {@code codec} encoded elsewhere (e.g. on a GPU), copied in;
     * their sizes must be the codec's for rows × width, and the params must pass {@link LinkCodec#checkParams}.
     */
    public long writeEncoded(LinkCodec codec, BatchLayout layout, MemorySegment params, MemorySegment payload, int rows,
                             int width) {
        if (rows < 1 || width < 1) {
            throw new IllegalArgumentException("a frame needs rows >= 1 and width >= 1, got " + rows + " and " + width);
        }
        int paramsBytes = codec.paramsBytes(rows, width);
        long payloadBytes = codec.payloadBytes(rows, width);
        if (params.byteSize() != paramsBytes || payload.byteSize() != payloadBytes) {
            throw new IllegalArgumentException("pre-encoded " + codec.id() + " sections for " + rows + " rows × " + width
                    + " must be params " + paramsBytes + " and payload " + payloadBytes + " bytes, got params "
                    + params.byteSize() + " and payload " + payload.byteSize());
        }
        MemorySegment sections = reserveSections(codec, layout, rows, width);
        MemorySegment.copy(params, 0, sections, 0, paramsBytes);
        MemorySegment.copy(payload, 0, sections, paramsBytes, payloadBytes);
        return seal();
    }

    /**
     * Writes header and layout of a frame whose params and payload are encoded by {@code codec} elsewhere, and
     * returns those two sections back to back (params first; {@code paramsBytes + payloadBytes} bytes, a slice of
     * the buffer at {@link #sectionsOffset()}). Fill them, then {@link #seal()}.
     */
    public MemorySegment reserveSections(LinkCodec codec, BatchLayout layout, int rows, int width) {
        if (layout.tokens() != rows) {
            throw new IllegalArgumentException("batch layout carries " + layout.tokens() + " tokens, frame has "
                    + rows + " rows");
        }
        int layoutBytes = layout.encodedBytes();
        checkFrame(codec, layoutBytes, rows, width);
        writeHeaderFields(codec, layoutBytes, rows, width);
        layout.encodeInto(buffer.asSlice(HEADER_BYTES, layoutBytes));
        reservedFor = codec;
        return buffer.asSlice(sectionsOffset(), codec.paramsBytes(rows, width) + payloadLength);
    }

    /** Where params start in the buffer: header plus layout of the frame being written. */
    public long sectionsOffset() {
        return HEADER_BYTES + (long) layoutLength;
    }

    /**
     * Checksums the frame whose sections {@link #reserveSections} handed out, once they are filled; returns its
     * length. Params the codec cannot decode (an RPTQ plan fingerprint of another plan) are refused.
     */
    public long seal() {
        if (reservedFor == null) {
            throw new IllegalStateException("no reserved sections to seal: reserveSections() since the last wrap() first");
        }
        LinkCodec codec = reservedFor;
        reservedFor = null;
        int paramsBytes = codec.paramsBytes(rows, width);
        try {
            codec.checkParams(buffer.asSlice(sectionsOffset(), paramsBytes), rows, width);
        } catch (FrameException e) {
            throw new IllegalArgumentException("pre-encoded params refused by " + codec.id() + ": " + e.getMessage(), e);
        }
        return sealCrc(sectionsOffset() + paramsBytes + payloadLength);
    }

    /** As {@link #encode(LinkCodec, BatchLayout, MemorySegment, int, int)}, with the layout section given as bytes. */
    public long encode(LinkCodec codec, MemorySegment layoutSection, MemorySegment activations, int rows, int width) {
        if (layoutSection.byteSize() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("layout section of " + layoutSection.byteSize() + " bytes");
        }
        int layoutBytes = (int) layoutSection.byteSize();
        writeHeader(codec, layoutBytes, activations, rows, width);
        MemorySegment.copy(layoutSection, 0, buffer, HEADER_BYTES, layoutBytes);
        return encodeSections(codec, activations);
    }

    /** The frame written by the last {@code encode}. */
    public MemorySegment frame() {
        if (frameLength == 0) {
            throw new IllegalStateException("no frame encoded since the last wrap()");
        }
        return buffer.asSlice(0, frameLength);
    }

    public long frameLength() {
        return frameLength;
    }

    public int rows() {
        return rows;
    }

    public int width() {
        return width;
    }

    public int layoutLength() {
        return layoutLength;
    }

    public long payloadLength() {
        return payloadLength;
    }

    private void writeHeader(LinkCodec codec, int layoutBytes, MemorySegment activations, int rows, int width) {
        checkFrame(codec, layoutBytes, rows, width);
        long activationBytes = (long) rows * width * Float.BYTES;
        if (activations.byteSize() < activationBytes) {
            throw new IllegalArgumentException("activations of " + rows + " rows × " + width + " need "
                    + activationBytes + " bytes, segment has " + activations.byteSize());
        }
        writeHeaderFields(codec, layoutBytes, rows, width);
    }

    private void checkFrame(LinkCodec codec, int layoutBytes, int rows, int width) {
        if (buffer == null) {
            throw new IllegalStateException("wrap() a buffer before encoding");
        }
        long needed = LinkFrame.frameBytes(codec, layoutBytes, rows, width) + sealBytes();
        if (needed > MAX_FRAME_BYTES) {
            throw new IllegalArgumentException("a frame of " + rows + " rows × " + width + " through " + codec.id()
                    + " would take " + needed + " bytes, more than " + MAX_FRAME_BYTES);
        }
        if (buffer.byteSize() < needed) {
            throw new IllegalArgumentException("frame of " + rows + " rows × " + width + " through " + codec.id()
                    + " needs " + needed + " bytes, buffer has " + buffer.byteSize());
        }
    }

    private void writeHeaderFields(LinkCodec codec, int layoutBytes, int rows, int width) {
        this.reservedFor = null;
        this.rows = rows;
        this.width = width;
        this.layoutLength = layoutBytes;
        this.payloadLength = codec.payloadBytes(rows, width);
        this.frameLength = 0;
        buffer.set(U8, CODEC_ID_OFFSET, (byte) codec.id().wireId());
        buffer.set(I32, ROWS_OFFSET, rows);
        buffer.set(I32, WIDTH_OFFSET, width);
        buffer.set(I32, LAYOUT_LENGTH_OFFSET, layoutBytes);
        buffer.set(I32, PARAMS_LENGTH_OFFSET, codec.paramsBytes(rows, width));
        buffer.set(I32, PAYLOAD_LENGTH_OFFSET, (int) payloadLength);
        buffer.set(I32, SEAL_LENGTH_OFFSET, sealBytes());
    }

    private long encodeSections(LinkCodec codec, MemorySegment activations) {
        int paramsBytes = codec.paramsBytes(rows, width);
        long paramsOffset = HEADER_BYTES + (long) layoutLength;
        long payloadOffset = paramsOffset + paramsBytes;
        codec.encode(activations, rows, width,
                buffer.asSlice(paramsOffset, paramsBytes), buffer.asSlice(payloadOffset, payloadLength));
        return sealCrc(payloadOffset + payloadLength);
    }

    /** Seals the sections that end at {@code sectionsEnd} (if the link has a seal), then checksums it all. */
    private long sealCrc(long sectionsEnd) {
        long crcOffset = sectionsEnd;
        if (seal != null) {
            seal.seal(buffer, sectionsEnd);
            crcOffset += seal.trailerBytes();
        }
        buffer.set(I32, crcOffset, crc32c(crc, buffer, crcOffset));
        frameLength = crcOffset + CRC_BYTES;
        return frameLength;
    }

    private static short u16(String field, int value) {
        if (value < 0 || value > MAX_U16) {
            throw new IllegalArgumentException(field + " must fit a u16 (0.." + MAX_U16 + "), got " + value);
        }
        return (short) value;
    }
}
