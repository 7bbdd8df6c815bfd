package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.synthetic.SyntheticActivations;
import io.bitrelay.runtime.wire.FrameException.Reason;
import io.bitrelay.runtime.wire.RptqLinkCodec.Ranges;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static io.bitrelay.runtime.wire.WireTestData.floats;
import static io.bitrelay.runtime.wire.WireTestData.zeros;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** RPTQ frames through LinkFrameWriter and LinkFrameReader: round trip, corruption, plans that disagree. */
@Timeout(30)
class RptqLinkFrameTest {
    private static final int HIDDEN = 768;
    private static final ClusterPlan PLAN = new ChannelClustering(8).plan(
            SyntheticActivations.llmLike(128, HIDDEN, 1), 128, HIDDEN);

    private static BatchLayout decodeStep(int batch) {
        List<BatchLayout.Entry> entries = new ArrayList<>();
        for (int s = 0; s < batch; s++) {
            entries.add(BatchLayout.Entry.of(s, 1, 100 + s));
        }
        return new BatchLayout(entries);
    }

    @Test
    void shouldRoundTripFramesThroughWriterAndReader() {
        LinkFrameReader reader = new LinkFrameReader(LinkCodecs.all(PLAN));
        float[] values = SyntheticActivations.llmLike(8, HIDDEN, 9);
        for (String name : new String[] {"int4", "int3", "int4-rptq", "fp16", "int8"}) {
            LinkCodec codec = LinkCodecs.forName(name, PLAN);
            MemorySegment frame = LinkFrameTest.write(codec, decodeStep(8), values, 8, HIDDEN);
            reader.wrap(frame);
            assertEquals(codec.id(), reader.codecId());
            assertEquals(8, reader.batchLayout().entries().size());
            MemorySegment out = zeros(8L * HIDDEN * Float.BYTES);
            reader.decodeInto(out);
            MemorySegment direct = zeros(8L * HIDDEN * Float.BYTES);
            codec.decode(reader.params(), reader.payload(), 8, HIDDEN, direct);
            assertArrayEquals(floats(direct, 8 * HIDDEN), floats(out, 8 * HIDDEN), name);
            double error = RptqLinkCodecTest.mse(values, floats(out, 8 * HIDDEN));
            assertTrue(error < 0.2, name + " decodes close to what was sent: MSE " + error);
        }
    }

    @Test
    void shouldRejectAnRptqFrameWithACorruptCrc() {
        float[] values = SyntheticActivations.llmLike(8, HIDDEN, 10);
        for (LinkCodec codec : new LinkCodec[] {RptqLinkCodec.int4(PLAN), RptqLinkCodec.int3(PLAN)}) {
            MemorySegment frame = LinkFrameTest.write(codec, decodeStep(8), values, 8, HIDDEN);
            LinkFrameReader reader = new LinkFrameReader(LinkCodecs.all(PLAN));
            reader.wrap(frame); // intact: accepted
            long[] corruptAt = {LinkFrame.HEADER_BYTES + 8 * 12 + 2, frame.byteSize() - 100, frame.byteSize() - 1};
            for (long at : corruptAt) { // a params byte (a scale), a payload byte, the CRC itself
                MemorySegment copy = zeros(frame.byteSize());
                MemorySegment.copy(frame, 0, copy, 0, frame.byteSize());
                copy.set(ValueLayout.JAVA_BYTE, at, (byte) (copy.get(ValueLayout.JAVA_BYTE, at) ^ 0x10));
                FrameException e = assertThrows(FrameException.class, () -> reader.wrap(copy));
                assertEquals(Reason.BAD_CRC, e.reason(), codec.id() + " byte " + at + ": " + e.getMessage());
                assertThrows(IllegalStateException.class, reader::rows, "a rejected frame leaves the reader empty");
            }
        }
    }

    @Test
    void shouldRejectAFrameEncodedWithAnotherPlan() {
        ClusterPlan other = new ChannelClustering(8).plan(SyntheticActivations.llmLike(128, HIDDEN, 2), 128, HIDDEN);
        MemorySegment frame = LinkFrameTest.write(RptqLinkCodec.int4(other), decodeStep(2),
                SyntheticActivations.llmLike(2, HIDDEN, 3), 2, HIDDEN);
        FrameException e = assertThrows(FrameException.class, () -> new LinkFrameReader(LinkCodecs.all(PLAN)).wrap(frame));
        assertEquals(Reason.UNKNOWN_CODEC, e.reason());
        assertTrue(e.getMessage().contains(String.format("%08x", other.fingerprint()))
                && e.getMessage().contains(String.format("%08x", PLAN.fingerprint())), e.getMessage());
    }

    @Test
    void shouldRejectRptqFramesOnAReaderWithoutAPlanOrWithOtherRanges() {
        MemorySegment frame = LinkFrameTest.write(RptqLinkCodec.int3(PLAN), decodeStep(1),
                SyntheticActivations.llmLike(1, HIDDEN, 4), 1, HIDDEN);
        assertEquals(Reason.UNKNOWN_CODEC, assertThrows(FrameException.class, () -> new LinkFrameReader().wrap(frame)).reason());
        LinkFrameReader staticReader = new LinkFrameReader(LinkCodecs.all(PLAN, Ranges.STATIC));
        assertEquals(Reason.BAD_SIZES, assertThrows(FrameException.class, () -> staticReader.wrap(frame)).reason());
    }

    @Test
    void shouldBuildCodecsByNameOrIdWithAPlan() {
        assertEquals(CodecId.INT4_RPTQ, LinkCodecs.forName("int4", PLAN).id());
        assertEquals(CodecId.INT3_RPTQ, LinkCodecs.forName("int3", PLAN).id());
        assertEquals(CodecId.INT3_RPTQ, LinkCodecs.forName("int3-rptq", PLAN).id());
        assertEquals(CodecId.INT4_RPTQ, LinkCodecs.forId(CodecId.INT4_RPTQ, PLAN).id());
        assertSame(LinkCodecs.forName("int8"), LinkCodecs.forName("int8", PLAN));
        assertEquals(Ranges.STATIC, ((RptqLinkCodec) LinkCodecs.forId(CodecId.INT3_RPTQ, PLAN, Ranges.STATIC)).ranges());
        IllegalArgumentException noPlan = assertThrows(IllegalArgumentException.class, () -> LinkCodecs.forName("int4"));
        assertTrue(noPlan.getMessage().contains("calibration plan"), noPlan.getMessage());
    }
}
