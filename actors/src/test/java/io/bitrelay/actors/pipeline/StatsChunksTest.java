package io.bitrelay.actors.pipeline;

import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.ChannelStats;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StatsChunksTest {
    @Test
    void shouldSplitWideSitesAndJoinThemBackBitForBitInAnyOrder() {
        SplittableRandom random = new SplittableRandom(1);
        Map<CalibrationStats.Key, ChannelStats> entries = new TreeMap<>();
        for (int layer = 0; layer < 4; layer++) {
            for (ActivationSite site : ActivationSite.values()) {
                int width = site == ActivationSite.FC2_INPUT ? 49_152 : 12_288; // OPT-175B's widths
                float[] min = new float[width];
                float[] max = new float[width];
                float[] abs = new float[width];
                for (int j = 0; j < width; j++) {
                    min[j] = (float) -random.nextDouble();
                    max[j] = (float) random.nextDouble();
                    abs[j] = Math.max(-min[j], max[j]);
                }
                entries.put(new CalibrationStats.Key(layer, site), new ChannelStats(min, max, abs, 4096 + layer));
            }
        }
        CalibrationStats stats = new CalibrationStats(new CalibrationStats.Source("m", "t", 4, 1024), entries);
        List<StatsChunk> chunks = new ArrayList<>(StatsChunks.split(stats, layer -> layer >= 1 && layer < 3, 2, StatsChunks.MAX_CHANNELS));
        // 2 layers × (6 sites of 1 chunk + fc2 input in 3 chunks)
        assertEquals(2 * (6 + 3), chunks.size());
        for (StatsChunk chunk : chunks) {
            assertTrue(chunk.min().length <= StatsChunks.MAX_CHANNELS);
            assertTrue(3L * chunk.min().length * Float.BYTES < 256 * 1024, "under Artery's default frame size");
        }
        Collections.shuffle(chunks, new java.util.Random(3));
        StatsChunks.Assembler assembler = new StatsChunks.Assembler();
        for (int i = 0; i < chunks.size(); i++) {
            assertFalse(assembler.complete());
            assembler.add(chunks.get(i));
        }
        assertTrue(assembler.complete());
        assertEquals(2 * ActivationSite.values().length, assembler.entries().size());
        assembler.entries().forEach((key, joined) -> {
            ChannelStats original = entries.get(key);
            assertArrayEquals(original.min(), joined.min());
            assertArrayEquals(original.max(), joined.max());
            assertArrayEquals(original.absMax(), joined.absMax());
            assertEquals(original.rows(), joined.rows());
        });
    }
}
