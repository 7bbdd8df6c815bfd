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
 * keeps a decode frame at 12 bytes per sequence. A sequence that asked for log-probabilities carries how
 * many top alternatives it wants (L), and a prompt being scored (echo + logprobs) carries, per row, the
 * token that row must predict (T): the last stage then scores those rows instead of sampling, again
 * without a side channel that could race the frame.
 *
 * <pre>
 *  entry, 12 bytes, little-endian; entries back to back, delimited by the section length (no count)
 *  +-----------------------+-------------------------------------------+------------------------+
 *  | sequence id (i32, ≥0) | S | L | T | C | P | count (27 bits, ≥1)   | start position (i32,≥0)|
 *  +-----------------------+-------------------------------------------+------------------------+
 *  then, only when S (bit 31 of the token count word) is set, 20 bytes:
 *  +-------------------+-------------+-------------+----------------+
 *  | temperature (f32) | top-k (i32) | top-p (f32) | seed (i64)     |
 *  +-------------------+-------------+-------------+----------------+
 *  then, only when C (bit 28, first chunks only) is set, 4 bytes: the tokens the sequence's KV cache must hold
 *  (prompt + most new tokens), so a GPU stage sizes it for the request instead of the model's whole context
 *  P (bit 27) marks a chunk of a prompt that goes on in a later step (chunked prefill): the last stage samples nothing
 *  then, only when L (bit 30) is set, 4 bytes: top log-probabilities wanted per position (i32, 0..20)
 *  then, only when T (bit 29, needs L) is set, 4 bytes per row: the token id the row predicts (i32, −1: none)
 * </pre>
 */
public record BatchLayout(List<Entry> entries) {
    public static final int ENTRY_BYTES = 12;
    public static final int SAMPLING_BYTES = 20;
    public static final int LOGPROBS_BYTES = 4;
    public static final int CAPACITY_BYTES = 4;
    /** Most top alternatives a position can ask for (OpenAI's legacy API allows 5; vLLM 20). */
    public static final int MAX_TOP_LOGPROBS = 20;
    private static final int HAS_SAMPLING = 0x8000_0000;
    private static final int HAS_LOGPROBS = 0x4000_0000;
    private static final int HAS_TARGETS = 0x2000_0000;
    private static final int HAS_CAPACITY = 0x1000_0000;
    private static final int PARTIAL_PROMPT = 0x0800_0000;
    private static final int TOKEN_COUNT_MASK = 0x07FF_FFFF;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LinkFrame.BYTE_ORDER);

    /**
     * One sequence's run of rows; {@code sampling} is null except on the sequence's first chunk.
     *
     * @param logprobs top alternatives wanted with each scored or sampled position, or −1 for no log-probabilities
     * @param targets  for a prompt being scored: per row the token id it predicts (−1: none, the prompt's last
     *                 position), and the last stage samples nothing; null otherwise
     * @param kvCapacity on a sequence's first chunk, the tokens its KV cache must hold; 0 for the model's context
     * @param partialPrompt a chunk of a prompt that goes on in a later step: nothing is sampled for it
     */
    public record Entry(int sequenceId, int tokenCount, int startPosition, SamplingParams sampling, int logprobs,
                        int[] targets, int kvCapacity, boolean partialPrompt) {
        public Entry {
            if (sequenceId < 0 || tokenCount < 1 || tokenCount > TOKEN_COUNT_MASK || startPosition < 0) {
                throw new IllegalArgumentException("a layout entry needs sequenceId >= 0, tokenCount in [1, 2^27) and"
                        + " startPosition >= 0, got " + sequenceId + ", " + tokenCount + ", " + startPosition);
            }
            if (kvCapacity < 0 || (kvCapacity > 0 && (startPosition != 0 || kvCapacity < tokenCount))) {
                throw new IllegalArgumentException("a KV capacity belongs to a first chunk and holds its tokens: capacity "
                        + kvCapacity + ", start " + startPosition + ", tokens " + tokenCount);
            }
            if (partialPrompt && targets != null) {
                throw new IllegalArgumentException("a scored chunk is never a partial prompt: its rows are scored");
            }
            if (logprobs < -1 || logprobs > MAX_TOP_LOGPROBS) {
                throw new IllegalArgumentException("logprobs must be -1 (none) or 0.." + MAX_TOP_LOGPROBS + ", got " + logprobs);
            }
            if (targets != null && (targets.length != tokenCount || logprobs < 0 || sampling != null)) {
                throw new IllegalArgumentException("a scored chunk needs one target per row (" + tokenCount + ", got "
                        + targets.length + "), logprobs >= 0 (got " + logprobs + ") and no sampling");
            }
        }

        public Entry(int sequenceId, int tokenCount, int startPosition, SamplingParams sampling, int logprobs, int[] targets) {
            this(sequenceId, tokenCount, startPosition, sampling, logprobs, targets, 0, false);
        }

        public Entry(int sequenceId, int tokenCount, int startPosition, SamplingParams sampling) {
            this(sequenceId, tokenCount, startPosition, sampling, -1, null);
        }

        /** A chunk of a prompt being scored: row r predicts {@code targets[r]}; nothing is sampled. */
        public static Entry scored(int sequenceId, int startPosition, int[] targets, int topLogprobs) {
            return new Entry(sequenceId, targets.length, startPosition, null, topLogprobs, targets.clone());
        }

        /** This entry, also asking for the sampled token's log-probability and {@code topLogprobs} alternatives. */
        public Entry withLogprobs(int topLogprobs) {
            return new Entry(sequenceId, tokenCount, startPosition, sampling, topLogprobs, targets, kvCapacity, partialPrompt);
        }

        /** This first chunk, asking each stage for a KV cache of {@code capacity} tokens. */
        public Entry withKvCapacity(int capacity) {
            return new Entry(sequenceId, tokenCount, startPosition, sampling, logprobs, targets, capacity, partialPrompt);
        }

        /** This chunk, marked as not the last of its prompt: the last stage samples nothing for it. */
        public Entry asPartialPrompt() {
            return new Entry(sequenceId, tokenCount, startPosition, sampling, logprobs, targets, kvCapacity, true);
        }

        /** Whether the last stage samples a token from this entry's last row. */
        public boolean samples() {
            return targets == null && !partialPrompt;
        }

        public boolean scoresPrompt() {
            return targets != null;
        }

        /** Arrays compare by content, so a decoded layout equals the one encoded. */
        @Override
        public boolean equals(Object other) {
            return other instanceof Entry e && e.sequenceId == sequenceId && e.tokenCount == tokenCount
                    && e.startPosition == startPosition && Objects.equals(e.sampling, sampling) && e.logprobs == logprobs
                    && java.util.Arrays.equals(e.targets, targets) && e.kvCapacity == kvCapacity
                    && e.partialPrompt == partialPrompt;
        }

        @Override
        public int hashCode() {
            return Objects.hash(sequenceId, tokenCount, startPosition, sampling, logprobs, kvCapacity, partialPrompt) * 31
                    + java.util.Arrays.hashCode(targets);
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
            return ENTRY_BYTES + (hasSampling() ? SAMPLING_BYTES : 0) + (kvCapacity > 0 ? CAPACITY_BYTES : 0)
                    + (logprobs >= 0 ? LOGPROBS_BYTES : 0)
                    + (targets != null ? targets.length * Integer.BYTES : 0);
        }

        private int countWord() {
            return tokenCount | (hasSampling() ? HAS_SAMPLING : 0) | (logprobs >= 0 ? HAS_LOGPROBS : 0)
                    | (targets != null ? HAS_TARGETS : 0) | (kvCapacity > 0 ? HAS_CAPACITY : 0)
                    | (partialPrompt ? PARTIAL_PROMPT : 0);
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
            section.set(LinkFrame.I32, offset + 4, e.countWord());
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
            if (e.kvCapacity() > 0) {
                section.set(LinkFrame.I32, offset, e.kvCapacity());
                offset += CAPACITY_BYTES;
            }
            if (e.logprobs() >= 0) {
                section.set(LinkFrame.I32, offset, e.logprobs());
                offset += LOGPROBS_BYTES;
            }
            if (e.targets() != null) {
                MemorySegment.copy(e.targets(), 0, section, LinkFrame.I32, offset, e.targets().length);
                offset += (long) e.targets().length * Integer.BYTES;
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
            int tokenCount = countWord & TOKEN_COUNT_MASK;
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
            int kvCapacity = 0;
            if ((countWord & HAS_CAPACITY) != 0) {
                requireBytes(section, offset, CAPACITY_BYTES, "KV capacity word");
                kvCapacity = section.get(LinkFrame.I32, offset);
                if (kvCapacity <= 0) {
                    throw badLayout("KV capacity at byte " + offset + " is " + kvCapacity + " (need >= 1)");
                }
                offset += CAPACITY_BYTES;
            }
            int logprobs = -1;
            if ((countWord & HAS_LOGPROBS) != 0) {
                requireBytes(section, offset, LOGPROBS_BYTES, "logprobs word");
                logprobs = section.get(LinkFrame.I32, offset);
                offset += LOGPROBS_BYTES;
            }
            int[] targets = null;
            if ((countWord & HAS_TARGETS) != 0) {
                requireBytes(section, offset, (int) Math.min(Integer.MAX_VALUE, (long) tokenCount * Integer.BYTES), "targets");
                targets = new int[tokenCount];
                MemorySegment.copy(section, LinkFrame.I32, offset, targets, 0, tokenCount);
                offset += (long) tokenCount * Integer.BYTES;
            }
            try {
                entries.add(new Entry(sequenceId, tokenCount, startPosition, sampling, logprobs, targets, kvCapacity,
                        (countWord & PARTIAL_PROMPT) != 0));
            } catch (IllegalArgumentException e) {
                throw badLayout("entry of sequence " + sequenceId + ": " + e.getMessage());
            }
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
