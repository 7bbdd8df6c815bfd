package io.bitrelay.runtime.wire;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.zip.CRC32C;

import static io.bitrelay.runtime.wire.LinkFrame.*;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Property-based fuzzing of the link frame decoder (issue 16): whatever reaches a data port — random bytes, random
 * bytes behind a valid magic and version, or a genuine frame with a header field set to any value and its CRC made
 * to match again (so the check gets past the CRC to the sizes, the layout and the codec) — is either a frame the
 * reader can decode completely, or a {@link FrameException} whose message starts with its reason. No other
 * exception may escape {@code wrap}, {@code batchLayout} or {@code decodeInto}: on a stage one would kill the
 * data-plane thread instead of failing a micro-batch.
 */
class LinkFrameFuzzTest {
    /** Header fields by offset and width in bytes: everything after the magic. */
    private static final int[][] HEADER_FIELDS = {
            {VERSION_OFFSET, 1}, {CODEC_ID_OFFSET, 1}, {FLAGS_OFFSET, 2}, {BATCH_ID_OFFSET, 8}, {STEP_OFFSET, 4},
            {SOURCE_STAGE_OFFSET, 2}, {TARGET_STAGE_OFFSET, 2}, {ROWS_OFFSET, 4}, {WIDTH_OFFSET, 4},
            {LAYOUT_LENGTH_OFFSET, 4}, {PARAMS_LENGTH_OFFSET, 4}, {PAYLOAD_LENGTH_OFFSET, 4}, {SEAL_LENGTH_OFFSET, 4}};
    private static final int WIDTH = 16;

    @Property(tries = 500, seed = "16101")
    void arbitraryBytesAreRejectedWithAReason(@ForAll("garbage") byte[] bytes) {
        readAll(bytes);
    }

    @Property(tries = 1000, seed = "16102")
    void anyHeaderValueBehindAMatchingCrcIsDecodedOrRejectedWithAReason(@ForAll("codecs") String codec,
                                                                        @ForAll("rowCounts") int rows,
                                                                        @ForAll("headerEdits") List<long[]> edits) {
        byte[] frame = genuineFrame(codec, rows);
        for (long[] edit : edits) {
            int[] field = HEADER_FIELDS[(int) edit[0]];
            write(frame, field[0], field[1], edit[1]);
        }
        fixCrc(frame);
        readAll(frame);
    }

    @Property(tries = 500, seed = "16103")
    void anyByteChangeOfAGenuineFrameIsRejected(@ForAll("codecs") String codec, @ForAll("rowCounts") int rows,
                                                @ForAll("positions") int position, @ForAll("nonZeroBytes") byte xor) {
        byte[] frame = genuineFrame(codec, rows);
        frame[position % frame.length] ^= xor;
        assertFalse(readAll(frame), "a changed byte passed the checks");
    }

    /**
     * Reads a frame as a stage does; true when it decoded. Anything but a {@link FrameException} naming its reason
     * fails the property.
     */
    private static boolean readAll(byte[] bytes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment frame = arena.allocate(Math.max(1, bytes.length)).asSlice(0, bytes.length);
            MemorySegment.copy(bytes, 0, frame, ValueLayout.JAVA_BYTE, 0, bytes.length);
            LinkFrameReader reader = new LinkFrameReader();
            try {
                reader.wrap(frame);
                reader.batchLayout();
                long needed = (long) reader.rows() * reader.width() * Float.BYTES;
                assertTrue(needed <= bytes.length * 8L, "a frame that passed decodes to " + needed + " bytes from " + bytes.length);
                reader.decodeInto(arena.allocate(needed));
                return true;
            } catch (FrameException e) {
                String reason = e.reason().name();
                assertTrue(e.getMessage().startsWith(reason + ": ") && e.getMessage().length() > reason.length() + 2,
                        e.getMessage());
                return false;
            }
        }
    }

    private static byte[] genuineFrame(String codecName, int rows) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment activations = arena.allocate((long) rows * WIDTH * Float.BYTES);
            for (int i = 0; i < rows * WIDTH; i++) {
                activations.setAtIndex(ValueLayout.JAVA_FLOAT, i, (i % 7) - 3.5f);
            }
            LinkCodec codec = LinkCodecs.forName(codecName);
            BatchLayout layout = new BatchLayout(List.of(BatchLayout.Entry.of(1, rows, 0)));
            MemorySegment buffer = arena.allocate(LinkFrame.frameBytes(codec, layout.encodedBytes(), rows, WIDTH));
            long length = new LinkFrameWriter().wrap(buffer).batchId(9).step(2).stages(0, 1).encode(codec, layout, activations, rows, WIDTH);
            return buffer.asSlice(0, length).toArray(ValueLayout.JAVA_BYTE);
        }
    }

    private static void write(byte[] frame, int offset, int width, long value) {
        for (int i = 0; i < width; i++) {
            frame[offset + i] = (byte) (value >>> (8 * i)); // little-endian, as the format
        }
    }

    private static void fixCrc(byte[] frame) {
        int crcAt = frame.length - CRC_BYTES; // the CRC is last, after any seal
        CRC32C crc = new CRC32C();
        crc.update(frame, 0, crcAt);
        write(frame, crcAt, CRC_BYTES, crc.getValue());
    }

    @Provide
    Arbitrary<byte[]> garbage() {
        Arbitrary<byte[]> random = Arbitraries.bytes().array(byte[].class).ofMaxSize(300);
        // Past the first checks: a valid magic and version, then anything.
        Arbitrary<byte[]> framed = Arbitraries.bytes().array(byte[].class).ofMinSize(HEADER_BYTES).ofMaxSize(300).map(bytes -> {
            write(bytes, MAGIC_OFFSET, 4, MAGIC);
            bytes[VERSION_OFFSET] = VERSION;
            return bytes;
        });
        return Arbitraries.oneOf(random, framed);
    }

    @Provide
    Arbitrary<String> codecs() {
        return Arbitraries.of("fp16", "int8");
    }

    @Provide
    Arbitrary<Integer> rowCounts() {
        return Arbitraries.integers().between(1, 4);
    }

    @Provide
    Arbitrary<Integer> positions() {
        return Arbitraries.integers().between(0, 100_000);
    }

    @Provide
    Arbitrary<Byte> nonZeroBytes() {
        return Arbitraries.bytes().filter(b -> b != 0);
    }

    /** One to three {field index, value}: values at the edges of every width, small numbers, and anything. */
    @Provide
    Arbitrary<List<long[]>> headerEdits() {
        Arbitrary<Long> value = Arbitraries.oneOf(Arbitraries.longs(), Arbitraries.longs().between(-2, 300),
                Arbitraries.of(0L, 1L, 0x7fL, 0xffL, 0x7fffL, 0xffffL, 0x7fffffffL, 0x80000000L, 0xffffffffL, Long.MAX_VALUE, Long.MIN_VALUE));
        return Combinators.combine(Arbitraries.integers().between(0, HEADER_FIELDS.length - 1), value)
                .as((field, v) -> new long[]{field, v}).list().ofMinSize(1).ofMaxSize(3);
    }
}
