package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.wire.FrameException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Random;

import static io.bitrelay.runtime.wire.WireTestData.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Frames written from params and payload encoded elsewhere (the GPU path) are byte-identical to frames the
 * codecs encode in the writer, and the reader hands their sections out without decoding.
 */
@Timeout(60)
class PreEncodedLinkFrameTest {
    private static final int[] TEST_WIDTHS = {1, 13, 768, 1003};

    @Test
    void shouldWriteTheSameBytesFromPreEncodedSectionsAsFromActivations() {
        for (int width : TEST_WIDTHS) {
            for (LinkCodec codec : codecs(width)) {
                for (int rows : ROWS) {
                    MemorySegment activations = segment(hiddenStates(rows, width, rows * 31L + width));
                    BatchLayout layout = layoutFor(rows);
                    byte[] expected = cpuFrame(codec, layout, activations, rows, width);

                    MemorySegment params = zeros(codec.paramsBytes(rows, width)).asSlice(0, codec.paramsBytes(rows, width));
                    MemorySegment payload = zeros(codec.payloadBytes(rows, width));
                    codec.encode(activations, rows, width, params, payload);

                    LinkFrameWriter copying = header(new LinkFrameWriter(), expected.length);
                    copying.writeEncoded(codec, layout, params, payload, rows, width);
                    assertArrayEquals(expected, copying.frame().toArray(ValueLayout.JAVA_BYTE),
                            codec.id() + " writeEncoded " + rows + " × " + width);

                    LinkFrameWriter reserving = header(new LinkFrameWriter(), expected.length);
                    MemorySegment sections = reserving.reserveSections(codec, layout, rows, width);
                    assertEquals(params.byteSize() + payload.byteSize(), sections.byteSize());
                    MemorySegment.copy(params, 0, sections, 0, params.byteSize());
                    MemorySegment.copy(payload, 0, sections, params.byteSize(), payload.byteSize());
                    assertEquals(expected.length, reserving.seal());
                    assertArrayEquals(expected, reserving.frame().toArray(ValueLayout.JAVA_BYTE),
                            codec.id() + " reserveSections " + rows + " × " + width);
                }
            }
        }
    }

    @Test
    void shouldHandOutTheSectionsOfAValidatedFrameWithoutDecoding() {
        int rows = 3;
        int width = 768;
        for (LinkCodec codec : codecs(width)) {
            MemorySegment activations = segment(hiddenStates(rows, width, 5));
            byte[] frame = cpuFrame(codec, layoutFor(rows), activations, rows, width);
            LinkFrameReader reader = new LinkFrameReader(codecs(width).toArray(LinkCodec[]::new))
                    .wrap(MemorySegment.ofArray(frame));
            MemorySegment sections = reader.sections();
            assertEquals(LinkFrame.HEADER_BYTES + layoutFor(rows).encodedBytes(), reader.sectionsOffset());
            assertEquals(reader.paramsLength() + (long) reader.payloadLength(), sections.byteSize());
            assertArrayEquals(reader.params().toArray(ValueLayout.JAVA_BYTE),
                    sections.asSlice(0, reader.paramsLength()).toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(reader.payload().toArray(ValueLayout.JAVA_BYTE),
                    sections.asSlice(reader.paramsLength()).toArray(ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void shouldRefusePreEncodedSectionsOfTheWrongSizeNamingBoth() {
        LinkCodec int8 = LinkCodecs.forName("int8");
        int rows = 3;
        int width = 13;
        LinkFrameWriter writer = header(new LinkFrameWriter(), 4096);
        MemorySegment params = zeros(2 * rows).asSlice(0, 2 * rows);
        MemorySegment payload = zeros((long) rows * width);
        IllegalArgumentException shortParams = assertThrows(IllegalArgumentException.class, () -> writer.writeEncoded(
                int8, layoutFor(rows), params.asSlice(0, 2 * rows - 1), payload, rows, width));
        assertTrue(shortParams.getMessage().contains("must be params 6 and payload 39 bytes, got params 5 and payload 39"),
                shortParams.getMessage());
        IllegalArgumentException longPayload = assertThrows(IllegalArgumentException.class, () -> writer.writeEncoded(
                int8, layoutFor(rows), params, zeros(rows * width + 1L), rows, width));
        assertTrue(longPayload.getMessage().contains("got params 6 and payload 40"), longPayload.getMessage());
        assertThrows(IllegalStateException.class, writer::frame, "a refused frame must not be readable");
    }

    @Test
    void shouldRefuseToSealWithoutReservedSections() {
        LinkFrameWriter writer = header(new LinkFrameWriter(), 4096);
        assertThrows(IllegalStateException.class, writer::seal);
        writer.reserveSections(LinkCodecs.forName("fp16"), layoutFor(1), 1, 4);
        writer.seal();
        IllegalStateException twice = assertThrows(IllegalStateException.class, writer::seal);
        assertTrue(twice.getMessage().contains("reserveSections()"), twice.getMessage());
    }

    @Test
    void shouldRefuseRptqSectionsEncodedWithAnotherPlan() {
        int width = 64;
        RptqLinkCodec ours = RptqLinkCodec.int4(randomPlan(width, 4, 1));
        RptqLinkCodec theirs = RptqLinkCodec.int4(randomPlan(width, 4, 2));
        MemorySegment activations = segment(hiddenStates(2, width, 9));
        MemorySegment params = zeros(theirs.paramsBytes(2, width)).asSlice(0, theirs.paramsBytes(2, width));
        MemorySegment payload = zeros(theirs.payloadBytes(2, width));
        theirs.encode(activations, 2, width, params, payload);
        LinkFrameWriter writer = header(new LinkFrameWriter(), 4096);
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                () -> writer.writeEncoded(ours, layoutFor(2), params, payload, 2, width));
        assertTrue(refused.getMessage().contains("encoded with cluster plan"), refused.getMessage());
    }

    @Test
    void shouldRejectAPreEncodedFrameWhoseDeclaredSizesWereCorrupted() {
        int rows = 2;
        int width = 16;
        LinkCodec int8 = LinkCodecs.forName("int8");
        MemorySegment activations = segment(hiddenStates(rows, width, 4));
        byte[] frame = cpuFrame(int8, layoutFor(rows), activations, rows, width);
        MemorySegment corrupt = MemorySegment.ofArray(frame.clone());
        corrupt.set(LinkFrame.I32, LinkFrame.PAYLOAD_LENGTH_OFFSET, rows * width - 1);
        corrupt.set(LinkFrame.I32, LinkFrame.PARAMS_LENGTH_OFFSET, 2 * rows + 1); // same total: only the codec notices
        FrameException e = assertThrows(FrameException.class, () -> new LinkFrameReader().wrap(corrupt));
        assertEquals(Reason.BAD_SIZES, e.reason());
        assertTrue(e.getMessage().contains("needs params 4 and payload 32"), e.getMessage());
    }

    private static byte[] cpuFrame(LinkCodec codec, BatchLayout layout, MemorySegment activations, int rows, int width) {
        LinkFrameWriter writer = header(new LinkFrameWriter(),
                LinkFrame.frameBytes(codec, layout.encodedBytes(), rows, width));
        writer.encode(codec, layout, activations, rows, width);
        return writer.frame().toArray(ValueLayout.JAVA_BYTE);
    }

    private static LinkFrameWriter header(LinkFrameWriter writer, long bufferBytes) {
        return writer.wrap(zeros(bufferBytes)).batchId(77).step(4).stages(1, 2).flags(3);
    }

    private static List<LinkCodec> codecs(int width) {
        ClusterPlan plan = randomPlan(width, Math.min(width, 5), width);
        return List.of(LinkCodecs.all(plan));
    }

    private static BatchLayout layoutFor(int rows) {
        return rows == 1 ? BatchLayout.of(BatchLayout.Entry.of(4, 1, 10))
                : BatchLayout.of(BatchLayout.Entry.of(1, rows - 1, 0), BatchLayout.Entry.of(2, 1, 33));
    }

    /** A shuffled channel order cut into {@code clusters} uneven clusters (ranges unused: dynamic codecs). */
    static ClusterPlan randomPlan(int width, int clusters, long seed) {
        Random random = new Random(seed);
        int[] permutation = new int[width];
        for (int i = 0; i < width; i++) {
            permutation[i] = i;
        }
        for (int i = width - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = permutation[i];
            permutation[i] = permutation[j];
            permutation[j] = t;
        }
        int[] ends = new int[clusters];
        for (int c = 0; c < clusters; c++) {
            ends[c] = (int) ((long) width * (c + 1) * (c + 1) / ((long) clusters * clusters)); // small clusters first
            ends[c] = Math.max(ends[c], c == 0 ? 1 : ends[c - 1] + 1);
        }
        ends[clusters - 1] = width;
        float[] min = new float[clusters];
        float[] max = new float[clusters];
        java.util.Arrays.fill(min, -1f);
        java.util.Arrays.fill(max, 1f);
        return new ClusterPlan(permutation, ends, min, max);
    }
}
