package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.wire.FrameException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.EnumSet;
import java.util.Set;
import java.util.zip.CRC32C;

import static io.bitrelay.runtime.wire.LinkFrame.*;
import static io.bitrelay.runtime.wire.WireTestData.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

@Timeout(60)
class LinkFrameTest {
    private static final LinkCodec FP16 = LinkCodecs.forName("fp16");
    private static final LinkCodec INT8 = LinkCodecs.forName("int8");

    @Test
    void shouldRoundTripActivationsLayoutAndHeaderThroughBothCodecs() {
        for (LinkCodec codec : new LinkCodec[] {FP16, INT8}) {
            for (int rows : ROWS) {
                for (int width : WIDTHS) {
                    float[] values = hiddenStates(rows, width, rows * 1000L + width);
                    BatchLayout layout = layoutFor(rows);
                    MemorySegment frame = write(codec, layout, values, rows, width);
                    assertEquals(LinkFrame.frameBytes(codec, layout.encodedBytes(), rows, width), frame.byteSize());

                    LinkFrameReader reader = new LinkFrameReader().wrap(frame);
                    assertEquals(VERSION, reader.version());
                    assertEquals(codec.id(), reader.codecId());
                    assertEquals(0x0102, reader.flags());
                    assertEquals(-42L, reader.batchId());
                    assertEquals(9, reader.step());
                    assertEquals(3, reader.sourceStage());
                    assertEquals(65535, reader.targetStage());
                    assertEquals(rows, reader.rows());
                    assertEquals(width, reader.width());
                    assertEquals(layout, reader.batchLayout());

                    MemorySegment out = zeros((long) rows * width * Float.BYTES);
                    reader.decodeInto(out);
                    float[] expected = decodedDirectly(codec, values, rows, width);
                    assertArrayEquals(expected, floats(out, rows * width), codec.id() + " " + rows + " × " + width);
                }
            }
        }
    }

    @Test
    void shouldReadFramesHeldInHeapBuffers() {
        float[] values = hiddenStates(3, 7, 1);
        MemorySegment native_ = write(INT8, layoutFor(3), values, 3, 7);
        MemorySegment heap = MemorySegment.ofArray(native_.toArray(ValueLayout.JAVA_BYTE));
        LinkFrameReader reader = new LinkFrameReader().wrap(heap);
        MemorySegment out = zeros(3 * 7 * Float.BYTES);
        reader.decodeInto(out);
        assertArrayEquals(decodedDirectly(INT8, values, 3, 7), floats(out, 21));
    }

    @Test
    void shouldSpellMagicOnTheWire() {
        MemorySegment frame = write(FP16, layoutFor(1), new float[] {1f}, 1, 1);
        assertEquals("BRLF", new String(frame.asSlice(0, 4).toArray(ValueLayout.JAVA_BYTE)));
        assertEquals(48, HEADER_BYTES);
    }

    @Test
    void shouldRejectFrameWithBadCrcWhereverABitFlips() {
        MemorySegment small = write(INT8, layoutFor(3), hiddenStates(3, 7, 2), 3, 7);
        for (long bit = 0; bit < small.byteSize() * 8; bit++) {
            assertFlipRejected(small, bit);
        }
        MemorySegment large = write(FP16, layoutFor(17), hiddenStates(17, 768, 3), 17, 768);
        for (long bit = 0; bit < large.byteSize() * 8; bit += 61) {
            assertFlipRejected(large, bit);
        }
    }

    @Test
    void shouldRejectTruncatedFrames() {
        MemorySegment frame = write(INT8, layoutFor(3), hiddenStates(3, 7, 4), 3, 7);
        long length = frame.byteSize();
        for (long cut : new long[] {0, 1, 4, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + CRC_BYTES - 1}) {
            FrameException e = reject(frame.asSlice(0, cut));
            assertEquals(Reason.TRUNCATED, e.reason(), e.getMessage());
            assertTrue(e.getMessage().contains("frame of " + cut + " bytes"), e.getMessage());
        }
        for (long cut : new long[] {HEADER_BYTES + CRC_BYTES, HEADER_BYTES + 20, length - 5, length - 4, length - 1}) {
            FrameException e = reject(frame.asSlice(0, cut));
            assertTrue(e.reason() == Reason.TRUNCATED || e.reason() == Reason.BAD_SIZES, e.getMessage());
            assertTrue(e.getMessage().contains("frame of " + cut + " bytes declares " + length), e.getMessage());
        }
    }

    @Test
    void shouldRejectTrailingBytes() {
        MemorySegment frame = write(INT8, layoutFor(3), hiddenStates(3, 7, 4), 3, 7);
        MemorySegment longer = zeros(frame.byteSize() + 1).asSlice(0, frame.byteSize() + 1);
        MemorySegment.copy(frame, 0, longer, 0, frame.byteSize());
        FrameException e = reject(longer);
        assertEquals(Reason.BAD_SIZES, e.reason());
        assertTrue(e.getMessage().contains("frame of " + longer.byteSize() + " bytes declares " + frame.byteSize()),
                e.getMessage());
    }

    @Test
    void shouldRejectBadMagic() {
        MemorySegment frame = write(FP16, layoutFor(1), new float[] {1f, 2f}, 1, 2);
        frame.set(ValueLayout.JAVA_BYTE, 3, (byte) 'G');
        assertEquals(Reason.BAD_MAGIC, reject(reseal(frame)).reason());
    }

    @Test
    void shouldRejectWrongVersion() {
        MemorySegment frame = write(FP16, layoutFor(1), new float[] {1f, 2f}, 1, 2);
        frame.set(U8, VERSION_OFFSET, (byte) 2);
        FrameException e = reject(reseal(frame));
        assertEquals(Reason.BAD_VERSION, e.reason());
        assertTrue(e.getMessage().contains("version 2"), e.getMessage());
    }

    @Test
    void shouldRejectUnknownCodec() {
        MemorySegment frame = write(FP16, layoutFor(1), new float[] {1f, 2f}, 1, 2);
        frame.set(U8, CODEC_ID_OFFSET, (byte) 9);
        FrameException unknown = reject(reseal(frame));
        assertEquals(Reason.UNKNOWN_CODEC, unknown.reason());
        assertTrue(unknown.getMessage().contains("codec id 9"), unknown.getMessage());

        frame.set(U8, CODEC_ID_OFFSET, (byte) CodecId.INT4_RPTQ.wireId());
        FrameException unavailable = reject(reseal(frame));
        assertEquals(Reason.UNKNOWN_CODEC, unavailable.reason());
        assertTrue(unavailable.getMessage().contains("int4-rptq (id 3) is not available on this node"),
                unavailable.getMessage());
    }

    @Test
    void shouldDecodeAFurtherCodecWhenTheReaderIsGivenIt() {
        LinkCodec rptqStandIn = new StandInCodec(CodecId.INT4_RPTQ);
        float[] values = {1f, -2f, 3f};
        MemorySegment frame = write(rptqStandIn, layoutFor(1), values, 1, 3);
        LinkFrameReader reader = new LinkFrameReader(FP16, INT8, rptqStandIn).wrap(frame);
        assertEquals(CodecId.INT4_RPTQ, reader.codecId());
        MemorySegment out = zeros(3 * Float.BYTES);
        reader.decodeInto(out);
        assertArrayEquals(values, floats(out, 3));
    }

    @Test
    void shouldRejectSectionLengthsThatDisagreeWithShape() {
        MemorySegment frame = write(INT8, layoutFor(3), hiddenStates(3, 7, 5), 3, 7);
        MemorySegment rowsChanged = copy(frame);
        rowsChanged.set(I32, ROWS_OFFSET, 4);
        FrameException e = reject(reseal(rowsChanged));
        assertEquals(Reason.BAD_SIZES, e.reason());
        assertTrue(e.getMessage().contains("needs params 8 and payload 28 bytes for 4 rows × 7"), e.getMessage());

        for (int[] shape : new int[][] {{1 << 30, 1 << 30}, {Integer.MAX_VALUE, 1}, {0, 7}, {3, -7}}) {
            MemorySegment bad = copy(frame);
            bad.set(I32, ROWS_OFFSET, shape[0]);
            bad.set(I32, WIDTH_OFFSET, shape[1]);
            assertEquals(Reason.BAD_SIZES, reject(reseal(bad)).reason(), shape[0] + " × " + shape[1]);
        }
        MemorySegment negative = copy(frame);
        negative.set(I32, PAYLOAD_LENGTH_OFFSET, -1);
        assertEquals(Reason.BAD_SIZES, reject(reseal(negative)).reason());
        MemorySegment huge = copy(frame);
        huge.set(I32, LAYOUT_LENGTH_OFFSET, Integer.MAX_VALUE);
        huge.set(I32, PAYLOAD_LENGTH_OFFSET, Integer.MAX_VALUE); // would wrap negative in int arithmetic
        assertEquals(Reason.TRUNCATED, reject(reseal(huge)).reason());
    }

    @Test
    void shouldExposeNothingAfterARejectedFrame() {
        MemorySegment good = write(FP16, layoutFor(1), new float[] {1f}, 1, 1);
        LinkFrameReader reader = new LinkFrameReader().wrap(good);
        assertEquals(1, reader.rows());
        assertThrows(FrameException.class, () -> reader.wrap(good.asSlice(0, 10)));
        assertThrows(IllegalStateException.class, reader::rows);
        assertThrows(IllegalStateException.class, () -> reader.decodeInto(zeros(4)));
    }

    @Test
    void shouldRefuseToWriteIntoTooSmallBuffersOrWithMismatchedLayouts() {
        MemorySegment activations = segment(new float[3 * 768]);
        LinkFrameWriter writer = new LinkFrameWriter();
        long needed = LinkFrame.frameBytes(INT8, layoutFor(3).encodedBytes(), 3, 768);
        writer.wrap(zeros(needed - 1).asSlice(0, needed - 1));
        IllegalArgumentException small = assertThrows(IllegalArgumentException.class,
                () -> writer.encode(INT8, layoutFor(3), activations, 3, 768));
        assertTrue(small.getMessage().contains("needs " + needed + " bytes"), small.getMessage());

        writer.wrap(zeros(needed).asSlice(0, needed));
        assertThrows(IllegalArgumentException.class, () -> writer.encode(INT8, layoutFor(2), activations, 3, 768));
        assertThrows(IllegalArgumentException.class, () -> writer.stages(0, 65536));
        assertThrows(IllegalArgumentException.class, () -> writer.flags(-1));
        assertEquals(needed, writer.encode(INT8, layoutFor(3), activations, 3, 768));
    }

    /** Every single-bit flip is caught; where it lands decides which check catches it first. */
    private static void assertFlipRejected(MemorySegment frame, long bit) {
        MemorySegment flipped = copy(frame);
        long at = bit / 8;
        flipped.set(ValueLayout.JAVA_BYTE, at, (byte) (flipped.get(ValueLayout.JAVA_BYTE, at) ^ (1 << (bit % 8))));
        FrameException e;
        try {
            new LinkFrameReader().wrap(flipped);
            fail("frame with bit " + bit + " flipped (byte " + at + ") was accepted");
            return;
        } catch (FrameException rejected) {
            e = rejected;
        }
        Set<Reason> allowed;
        if (at < VERSION_OFFSET) {
            allowed = EnumSet.of(Reason.BAD_MAGIC);
        } else if (at == VERSION_OFFSET) {
            allowed = EnumSet.of(Reason.BAD_VERSION);
        } else if (at == CODEC_ID_OFFSET) {
            allowed = EnumSet.of(Reason.UNKNOWN_CODEC);
        } else if (at >= ROWS_OFFSET && at < SEAL_LENGTH_OFFSET) {
            allowed = EnumSet.of(Reason.TRUNCATED, Reason.BAD_SIZES);
        } else if (at >= SEAL_LENGTH_OFFSET && at < HEADER_BYTES) {
            allowed = EnumSet.of(Reason.BAD_TAG); // an untagged reader refuses any declared tag
        } else {
            allowed = EnumSet.of(Reason.BAD_CRC); // flags, ids, layout, params, payload, the CRC itself
        }
        assertTrue(allowed.contains(e.reason()), "bit " + bit + " (byte " + at + "): " + e.getMessage());
    }

    private static FrameException reject(MemorySegment frame) {
        return assertThrows(FrameException.class, () -> new LinkFrameReader().wrap(frame));
    }

    static MemorySegment write(LinkCodec codec, BatchLayout layout, float[] values, int rows, int width) {
        long bytes = LinkFrame.frameBytes(codec, layout.encodedBytes(), rows, width);
        LinkFrameWriter writer = new LinkFrameWriter().wrap(zeros(bytes + 64)); // spare room: the frame is a slice
        long length = writer.flags(0x0102).batchId(-42).step(9).stages(3, 65535)
                .encode(codec, layout, segment(values), rows, width);
        assertEquals(bytes, length);
        return writer.frame();
    }

    /** Sequences 0.. with the rows split as 1, 2, 3, ...; the first carries sampling params. */
    static BatchLayout layoutFor(int rows) {
        java.util.List<BatchLayout.Entry> entries = new java.util.ArrayList<>();
        int left = rows;
        for (int sequence = 0; left > 0; sequence++) {
            int tokens = Math.min(left, sequence + 1);
            entries.add(sequence == 0
                    ? BatchLayout.Entry.firstChunk(sequence, tokens, 0, new SamplingParams(0.7f, 40, 0.9f, 1234L))
                    : BatchLayout.Entry.of(sequence, tokens, 100 + sequence));
            left -= tokens;
        }
        return new BatchLayout(entries);
    }

    private static float[] decodedDirectly(LinkCodec codec, float[] values, int rows, int width) {
        MemorySegment params = zeros(codec.paramsBytes(rows, width)).asSlice(0, codec.paramsBytes(rows, width));
        MemorySegment payload = zeros(codec.payloadBytes(rows, width)).asSlice(0, codec.payloadBytes(rows, width));
        codec.encode(segment(values), rows, width, params, payload);
        MemorySegment out = zeros((long) rows * width * Float.BYTES);
        codec.decode(params, payload, rows, width, out);
        return floats(out, rows * width);
    }

    private static MemorySegment copy(MemorySegment frame) {
        MemorySegment copy = zeros(frame.byteSize()).asSlice(0, frame.byteSize());
        MemorySegment.copy(frame, 0, copy, 0, frame.byteSize());
        return copy;
    }

    /** Recomputes the CRC so that the check under test, not the CRC, is what rejects the frame. */
    private static MemorySegment reseal(MemorySegment frame) {
        long crcAt = frame.byteSize() - CRC_BYTES;
        CRC32C crc = new CRC32C();
        crc.update(frame.asSlice(0, crcAt).asByteBuffer());
        frame.set(I32, crcAt, (int) crc.getValue());
        return frame;
    }

    /** Stands in for a calibrated RPTQ codec: FP16 under another id, to show the reader takes further codecs. */
    private record StandInCodec(CodecId id) implements LinkCodec {
        private static final Fp16Codec INNER = new Fp16Codec();

        @Override
        public int paramsBytes(int rows, int width) {
            return 0;
        }

        @Override
        public long payloadBytes(int rows, int width) {
            return INNER.payloadBytes(rows, width);
        }

        @Override
        public void encode(MemorySegment activations, int rows, int width, MemorySegment params, MemorySegment payload) {
            INNER.encode(activations, rows, width, params, payload);
        }

        @Override
        public void decode(MemorySegment params, MemorySegment payload, int rows, int width, MemorySegment out) {
            INNER.decode(params, payload, rows, width, out);
        }
    }
}
