package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.wire.FrameException.Reason;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Which sequences a frame's rows belong to, carried in the frame's layout section. Entries are in row
 * order; each covers {@code tokenCount} consecutive rows of one sequence whose first token sits at
 * {@code startPosition} (its KV cache length). A sequence's first chunk also carries its sampling
 * parameters, so the last stage can sample without a side channel; later (decode) chunks do not, which
 * keeps a decode frame at 12 bytes per sequence.
 *
 * <pre>
 *  entry, 12 bytes, little-endian; entries back to back, delimited by the section length (no count)
 *  +-----------------------+-------------------------------------+------------------------+
 *  | sequence id (i32, ≥0) | S | token count (31 bits, ≥1)       | start position (i32,≥0)|
 *  +-----------------------+-------------------------------------+------------------------+
 *  then, only when S (bit 31 of the token count word) is set, 20 bytes:
 *  +-------------------+-------------+-------------+----------------+
 *  | temperature (f32) | top-k (i32) | top-p (f32) | seed (i64)     |
 *  +-------------------+-------------+-------------+----------------+
 * </pre>
 */
public record BatchLayout(List<Entry> entries) {
    public static final int ENTRY_BYTES = 12;
    public static final int SAMPLING_BYTES = 20;
    private static final int HAS_SAMPLING = 0x8000_0000;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LinkFrame.BYTE_ORDER);

    /** One sequence's run of rows; {@code sampling} is null except on the sequence's first chunk. */
    public record Entry(int sequenceId, int tokenCount, int startPosition, SamplingParams sampling) {
        public Entry {
            if (sequenceId < 0 || tokenCount < 1 || startPosition < 0) {
                throw new IllegalArgumentException("a layout entry needs sequenceId >= 0, tokenCount >= 1 and"
                        + " startPosition >= 0, got " + sequenceId + ", " + tokenCount + ", " + startPosition);
            }
        }

        /** A continuation chunk (e.g. one decode token), 12 bytes on the wire. */
        public static Entry of(int sequenceId, int tokenCount, int startPosition) {
            return new Entry(sequenceId, tokenCount, startPosition, null);
        }

        /** A sequence's first chunk (its prompt), with the sampling block: 32 bytes on the wire. */
        public static Entry firstChunk(int sequenceId, int tokenCount, int startPosition, SamplingParams sampling) {
            return new Entry(sequenceId, tokenCount, startPosition, Objects.requireNonNull(sampling, "sampling"));
        }

        public boolean hasSampling() {
            return sampling != null;
        }

        public int encodedBytes() {
            return hasSampling() ? ENTRY_BYTES + SAMPLING_BYTES : ENTRY_BYTES;
        }
    }

    public BatchLayout {
        entries = List.copyOf(entries);
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("a batch layout needs at least one entry");
        }
        String problem = problem(entries);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
    }

    public static BatchLayout of(Entry... entries) {
        return new BatchLayout(List.of(entries));
    }

    /** Rows the layout accounts for: the sum of token counts. */
    public int tokens() {
        int tokens = 0;
        for (Entry e : entries) {
            tokens += e.tokenCount(); // cannot overflow: checked at construction
        }
        return tokens;
    }

    public int encodedBytes() {
        int bytes = 0;
        for (Entry e : entries) {
            bytes += e.encodedBytes();
        }
        return bytes;
    }

    /** Writes the wire form at the start of {@code section}, which needs {@link #encodedBytes()} bytes. */
    public void encodeInto(MemorySegment section) {
        long offset = 0;
        for (Entry e : entries) {
            section.set(LinkFrame.I32, offset, e.sequenceId());
            section.set(LinkFrame.I32, offset + 4, e.hasSampling() ? e.tokenCount() | HAS_SAMPLING : e.tokenCount());
            section.set(LinkFrame.I32, offset + 8, e.startPosition());
            offset += ENTRY_BYTES;
            if (e.hasSampling()) {
                SamplingParams s = e.sampling();
                section.set(F32, offset, s.temperature());
                section.set(LinkFrame.I32, offset + 4, s.topK());
                section.set(F32, offset + 8, s.topP());
                section.set(LinkFrame.I64, offset + 12, s.seed());
                offset += SAMPLING_BYTES;
            }
        }
    }

    /** Reads a layout section that must account for exactly {@code rows} rows; anything else is BAD_SIZES. */
    public static BatchLayout decode(MemorySegment section, int rows) {
        List<Entry> entries = new ArrayList<>();
        long size = section.byteSize();
        long offset = 0;
        while (offset < size) {
            requireBytes(section, offset, ENTRY_BYTES, "entry");
            int sequenceId = section.get(LinkFrame.I32, offset);
            int countWord = section.get(LinkFrame.I32, offset + 4);
            int startPosition = section.get(LinkFrame.I32, offset + 8);
            int tokenCount = countWord & ~HAS_SAMPLING;
            if (sequenceId < 0 || tokenCount < 1 || startPosition < 0) {
                throw badLayout("entry at byte " + offset + " has sequence id " + sequenceId + ", token count "
                        + tokenCount + ", start position " + startPosition + " (need >= 0, >= 1, >= 0)");
            }
            offset += ENTRY_BYTES;
            SamplingParams sampling = null;
            if ((countWord & HAS_SAMPLING) != 0) {
                requireBytes(section, offset, SAMPLING_BYTES, "sampling block");
                try {
                    sampling = new SamplingParams(section.get(F32, offset), section.get(LinkFrame.I32, offset + 4),
                            section.get(F32, offset + 8), section.get(LinkFrame.I64, offset + 12));
                } catch (IllegalArgumentException e) {
                    throw badLayout("sampling block at byte " + offset + ": " + e.getMessage());
                }
                offset += SAMPLING_BYTES;
            }
            entries.add(new Entry(sequenceId, tokenCount, startPosition, sampling));
        }
        String problem = entries.isEmpty() ? "no entries" : problem(entries);
        if (problem != null) {
            throw badLayout(problem);
        }
        long tokens = 0;
        for (Entry e : entries) {
            tokens += e.tokenCount();
        }
        if (tokens != rows) {
            throw badLayout("entries count " + tokens + " tokens, frame has " + rows + " rows");
        }
        return new BatchLayout(entries);
    }

    /** What makes these entries an invalid layout, or null: token counts overflowing, a sequence twice. */
    private static String problem(List<Entry> entries) {
        long tokens = 0;
        for (int i = 0; i < entries.size(); i++) {
            tokens += entries.get(i).tokenCount();
            for (int j = 0; j < i; j++) { // batches are tens of sequences: quadratic is cheaper than a set
                if (entries.get(j).sequenceId() == entries.get(i).sequenceId()) {
                    return "sequence " + entries.get(i).sequenceId() + " appears twice (entries " + j + " and " + i + ")";
                }
            }
        }
        return tokens > Integer.MAX_VALUE ? "entries count " + tokens + " tokens, more than an int" : null;
    }

    private static void requireBytes(MemorySegment section, long offset, int needed, String what) {
        long left = section.byteSize() - offset;
        if (left < needed) {
            throw badLayout(what + " at byte " + offset + " needs " + needed + " bytes, section has " + left + " left");
        }
    }

    private static FrameException badLayout(String detail) {
        return new FrameException(Reason.BAD_SIZES, "layout section: " + detail);
    }
}
