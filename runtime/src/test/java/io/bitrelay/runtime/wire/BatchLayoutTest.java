package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.wire.BatchLayout.Entry;
import io.bitrelay.runtime.wire.FrameException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.bitrelay.runtime.wire.WireTestData.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(10)
class BatchLayoutTest {
    private static final SamplingParams SAMPLING = new SamplingParams(0.8f, 50, 0.95f, -7L);

    @Test
    void shouldRoundTripEntriesWithAndWithoutSamplingBlocks() {
        BatchLayout layout = BatchLayout.of(
                Entry.firstChunk(7, 128, 0, SAMPLING),
                Entry.of(3, 1, 511),
                Entry.firstChunk(0, 5, 0, SamplingParams.greedy()),
                Entry.of(Integer.MAX_VALUE, 2, 40));
        assertEquals(32 + 12 + 32 + 12, layout.encodedBytes());
        assertEquals(136, layout.tokens());

        BatchLayout decoded = BatchLayout.decode(encode(layout), 136);
        assertEquals(layout, decoded);
        assertEquals(SAMPLING, decoded.entries().get(0).sampling());
        assertFalse(decoded.entries().get(1).hasSampling());
    }

    @Test
    void shouldRoundTripScoredChunksAndLogprobRequests() {
        BatchLayout layout = BatchLayout.of(
                Entry.scored(4, 512, new int[]{11, 12, 13, -1}, 5),
                Entry.firstChunk(9, 3, 0, SAMPLING).withLogprobs(0),
                Entry.of(2, 1, 77).withLogprobs(2));
        assertEquals((12 + 4 + 16) + (32 + 4) + (12 + 4), layout.encodedBytes());
        BatchLayout decoded = BatchLayout.decode(encode(layout), 8);
        assertEquals(layout, decoded);
        assertTrue(decoded.entries().get(0).scoresPrompt());
        assertEquals(java.util.List.of(11, 12, 13, -1), java.util.Arrays.stream(decoded.entries().get(0).targets()).boxed().toList());
        assertEquals(5, decoded.entries().get(0).logprobs());
        assertEquals(SAMPLING, decoded.entries().get(1).sampling());
        assertEquals(0, decoded.entries().get(1).logprobs());
        assertFalse(decoded.entries().get(2).scoresPrompt());
        assertEquals(-1, Entry.of(1, 1, 0).logprobs());
    }

    @Test
    void shouldCarryAFirstChunksKvCapacityAfterItsSamplingBlock() {
        BatchLayout layout = BatchLayout.of(
                Entry.firstChunk(7, 30, 0, SAMPLING).withKvCapacity(158).withLogprobs(1),
                Entry.scored(8, 0, new int[]{5, -1}, 0).withKvCapacity(2),
                Entry.of(3, 1, 40));
        assertEquals((32 + 4 + 4) + (12 + 4 + 4 + 8) + 12, layout.encodedBytes());
        BatchLayout decoded = BatchLayout.decode(encode(layout), 33);
        assertEquals(layout, decoded);
        assertEquals(158, decoded.entries().get(0).kvCapacity());
        assertEquals(1, decoded.entries().get(0).logprobs());
        assertEquals(0, decoded.entries().get(2).kvCapacity(), "0: the model's whole context");
        assertThrows(IllegalArgumentException.class, () -> Entry.of(3, 1, 40).withKvCapacity(64), "not a first chunk");
        assertThrows(IllegalArgumentException.class, () -> Entry.firstChunk(7, 30, 0, SAMPLING).withKvCapacity(29),
                "smaller than the chunk");
        MemorySegment section = encode(BatchLayout.of(Entry.firstChunk(7, 30, 0, SAMPLING).withKvCapacity(158)));
        section.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 32, 0);
        FrameException e = assertThrows(FrameException.class, () -> BatchLayout.decode(section, 30));
        assertEquals(Reason.BAD_SIZES, e.reason());
        assertTrue(e.getMessage().contains("KV capacity"), e.getMessage());
    }

    @Test
    void shouldMarkAPromptChunkThatGoesOnSoNothingIsSampledForIt() {
        BatchLayout layout = BatchLayout.of(
                Entry.firstChunk(7, 512, 0, SAMPLING).withKvCapacity(900).asPartialPrompt(),
                Entry.of(7 + 1, 1, 40));
        assertEquals(32 + 4 + 12, layout.encodedBytes(), "a flag bit, no extra bytes");
        BatchLayout decoded = BatchLayout.decode(encode(layout), 513);
        assertEquals(layout, decoded);
        assertTrue(decoded.entries().get(0).partialPrompt());
        assertFalse(decoded.entries().get(0).samples());
        assertTrue(decoded.entries().get(1).samples());
        assertFalse(Entry.scored(4, 0, new int[]{5, -1}, 0).samples());
        assertThrows(IllegalArgumentException.class, () -> Entry.scored(4, 0, new int[]{5, -1}, 0).asPartialPrompt());
    }

    @Test
    void shouldRejectAScoredChunkWithoutOneTargetPerRow() {
        assertThrows(IllegalArgumentException.class, () -> new Entry(1, 3, 0, null, 0, new int[]{1, 2}));
        assertThrows(IllegalArgumentException.class, () -> new Entry(1, 2, 0, null, -1, new int[]{1, 2}));
        assertThrows(IllegalArgumentException.class, () -> Entry.of(1, 1, 0).withLogprobs(BatchLayout.MAX_TOP_LOGPROBS + 1));
        MemorySegment section = encode(BatchLayout.of(Entry.scored(1, 0, new int[]{5, 6}, 1)));
        FrameException e = assertThrows(FrameException.class, () -> BatchLayout.decode(section.asSlice(0, section.byteSize() - 4), 2));
        assertTrue(e.getMessage().contains("targets"), e.getMessage());
    }

    @Test
    void shouldKeepDecodeEntriesAtTwelveBytesPerSequence() {
        BatchLayout decode = BatchLayout.of(Entry.of(1, 1, 10), Entry.of(2, 1, 20), Entry.of(3, 1, 30));
        assertEquals(3 * BatchLayout.ENTRY_BYTES, decode.encodedBytes());
        assertEquals(12, BatchLayout.ENTRY_BYTES);
        assertEquals(32, Entry.firstChunk(1, 1, 0, SAMPLING).encodedBytes());
    }

    @Test
    void shouldRejectCountsThatDoNotSumToRows() {
        MemorySegment section = encode(BatchLayout.of(Entry.of(1, 2, 0), Entry.of(2, 3, 0)));
        FrameException e = assertThrows(FrameException.class, () -> BatchLayout.decode(section, 6));
        assertEquals(Reason.BAD_SIZES, e.reason());
        assertTrue(e.getMessage().contains("entries count 5 tokens, frame has 6 rows"), e.getMessage());
        assertThrows(FrameException.class, () -> BatchLayout.decode(zeros(0).asSlice(0, 0), 1));
    }

    @Test
    void shouldRejectNegativeValuesAndZeroCounts() {
        for (int field = 0; field < 3; field++) {
            MemorySegment section = encode(BatchLayout.of(Entry.of(1, 2, 0)));
            section.set(LinkFrame.I32, field * 4L, field == 1 ? 0 : -1);
            int f = field;
            FrameException e = assertThrows(FrameException.class, () -> BatchLayout.decode(section, 2), "field " + f);
            assertEquals(Reason.BAD_SIZES, e.reason());
        }
        assertThrows(IllegalArgumentException.class, () -> Entry.of(-1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> Entry.of(1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> Entry.of(1, 1, -5));
    }

    @Test
    void shouldRejectTruncatedSections() {
        MemorySegment section = encode(BatchLayout.of(Entry.firstChunk(1, 4, 0, SAMPLING), Entry.of(2, 1, 9)));
        for (long cut : new long[] {1, 11, 12, 20, 31, 33, 43}) {
            FrameException e = assertThrows(FrameException.class, () -> BatchLayout.decode(section.asSlice(0, cut), 5));
            assertEquals(Reason.BAD_SIZES, e.reason(), "cut at " + cut);
            assertTrue(e.getMessage().contains("needs"), e.getMessage());
        }
    }

    @Test
    void shouldRejectInvalidSamplingBlocksAndRepeatedSequences() {
        MemorySegment section = encode(BatchLayout.of(Entry.firstChunk(1, 1, 0, SAMPLING)));
        section.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LinkFrame.BYTE_ORDER), 12, Float.NaN);
        FrameException e = assertThrows(FrameException.class, () -> BatchLayout.decode(section, 1));
        assertTrue(e.getMessage().contains("temperature"), e.getMessage());

        MemorySegment twice = encode(BatchLayout.of(Entry.of(1, 1, 0), Entry.of(2, 1, 0)));
        twice.set(LinkFrame.I32, 12, 1);
        FrameException repeated = assertThrows(FrameException.class, () -> BatchLayout.decode(twice, 2));
        assertTrue(repeated.getMessage().contains("sequence 1 appears twice"), repeated.getMessage());
        assertThrows(IllegalArgumentException.class, () -> BatchLayout.of(Entry.of(1, 1, 0), Entry.of(1, 1, 1)));
    }

    @Test
    void shouldRejectTokenCountsBeyondAnInt() {
        assertThrows(IllegalArgumentException.class,
                () -> BatchLayout.of(Entry.of(1, Integer.MAX_VALUE, 0), Entry.of(2, 1, 0)));
    }

    private static MemorySegment encode(BatchLayout layout) {
        MemorySegment section = zeros(layout.encodedBytes()).asSlice(0, layout.encodedBytes());
        layout.encodeInto(section);
        return section;
    }
}
