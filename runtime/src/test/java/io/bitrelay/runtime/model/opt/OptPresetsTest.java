package io.bitrelay.runtime.model.opt;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptPresetsTest {
    @Test
    void shouldKnowEveryOptSize() {
        for (String name : new String[]{"125m", "350m", "1.3b", "2.7b", "6.7b", "13b", "30b", "66b", "175b"}) {
            OptConfig config = OptPresets.get(name);
            assertEquals(50272, config.vocabSize(), name);
            assertEquals(2048, config.maxPositions(), name);
            assertEquals(4 * config.hiddenSize(), config.ffnDim(), name);
        }
        OptConfig big = OptPresets.get("opt-175b");
        assertEquals(96, big.numLayers());
        assertEquals(96, big.numHeads());
        assertEquals(12288, big.hiddenSize());
        assertEquals(49152, big.ffnDim());
        assertEquals(128, big.headDim());
        // ≈ 1.81 B parameters per layer, 174 B in the 96 layers.
        assertEquals(1_812_099_072L, big.layerParameters());
    }

    @Test
    void shouldDescribeOpt350mAsPostLayerNormWithProjections() {
        OptConfig config = OptPresets.get("350m");
        assertFalse(config.doLayerNormBefore());
        assertTrue(config.hasProjections());
        assertEquals(512, config.wordEmbedProjDim());
        assertFalse(config.hasFinalLayerNorm());
    }

    @Test
    void shouldNameUnknownPreset() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OptPresets.get("opt-7b"));
        assertTrue(e.getMessage().contains("opt-7b") && e.getMessage().contains("opt-175b"));
    }
}
