package io.bitrelay.actors.pipeline;

import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.ChannelStats;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.IntPredicate;

/** Splits {@link CalibrationStats} into {@link StatsChunk}s and joins them back, bit for bit. */
public final class StatsChunks {
    /** 16384 channels × 3 floats = 192 KiB of values per chunk, under Artery's 256 KiB frame with room for the rest. */
    public static final int MAX_CHANNELS = 16_384;

    private StatsChunks() {
    }

    /** The entries of {@code stats} whose layer {@code layers} accepts, in chunks of at most {@code maxChannels}. */
    public static List<StatsChunk> split(CalibrationStats stats, IntPredicate layers, int stageIndex, int maxChannels) {
        List<int[]> pieces = new ArrayList<>();
        List<Map.Entry<CalibrationStats.Key, ChannelStats>> entries = new ArrayList<>();
        for (Map.Entry<CalibrationStats.Key, ChannelStats> entry : stats.entries().entrySet()) {
            if (!layers.test(entry.getKey().layer())) {
                continue;
            }
            for (int offset = 0; offset < entry.getValue().width(); offset += maxChannels) {
                pieces.add(new int[]{entries.size(), offset});
            }
            entries.add(entry);
        }
        List<StatsChunk> chunks = new ArrayList<>();
        for (int[] piece : pieces) {
            Map.Entry<CalibrationStats.Key, ChannelStats> entry = entries.get(piece[0]);
            ChannelStats s = entry.getValue();
            int from = piece[1];
            int to = Math.min(s.width(), from + maxChannels);
            chunks.add(new StatsChunk(stageIndex, entry.getKey().layer(), entry.getKey().site().key(), from, s.width(), s.rows(),
                    Arrays.copyOfRange(s.min(), from, to), Arrays.copyOfRange(s.max(), from, to),
                    Arrays.copyOfRange(s.absMax(), from, to), pieces.size()));
        }
        return chunks;
    }

    /** Collects the chunks of one message, in any order; {@link #complete()} once all have arrived. */
    public static final class Assembler {
        private final Map<CalibrationStats.Key, ChannelStats> entries = new TreeMap<>();
        private int received;
        private int expected = -1;

        public void add(StatsChunk chunk) {
            if (expected >= 0 && chunk.chunks() != expected) {
                throw new IllegalArgumentException("chunk says " + chunk.chunks() + " chunks, earlier ones " + expected);
            }
            expected = chunk.chunks();
            CalibrationStats.Key key = new CalibrationStats.Key(chunk.layer(), ActivationSite.fromKey(chunk.site()));
            ChannelStats s = entries.computeIfAbsent(key, k -> new ChannelStats(new float[chunk.width()], new float[chunk.width()],
                    new float[chunk.width()], chunk.rows()));
            System.arraycopy(chunk.min(), 0, s.min(), chunk.offset(), chunk.min().length);
            System.arraycopy(chunk.max(), 0, s.max(), chunk.offset(), chunk.max().length);
            System.arraycopy(chunk.absMax(), 0, s.absMax(), chunk.offset(), chunk.absMax().length);
            received++;
        }

        /** An empty message (a stage without statistics) announces itself with {@code expected = 0}. */
        public void expect(int chunks) {
            if (expected >= 0 && expected != chunks) {
                throw new IllegalArgumentException("expected " + chunks + " chunks, chunks say " + expected);
            }
            expected = chunks;
        }

        public boolean complete() {
            return expected >= 0 && received == expected;
        }

        public Map<CalibrationStats.Key, ChannelStats> entries() {
            return entries;
        }
    }
}
