package io.bitrelay.runtime.cuda.cublaslt;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GemmTuningCacheTest {
    @TempDir
    Path temp;

    private static byte[] algo(int seed) {
        byte[] bytes = new byte[64];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) (seed * 31 + i);
        }
        return bytes;
    }

    @Test
    void shouldReadBackWhatItWrote() throws IOException {
        Path file = GemmTuningCache.file(temp.resolve("cache"), "NVIDIA H200", 130100, GemmSearch.variations(Duration.ofMillis(1500)));
        assertEquals("nvidia-h200-cublaslt130100-variations-1500ms.json", file.getFileName().toString());
        List<GemmTuningCache.Entry> entries = List.of(
                new GemmTuningCache.Entry(GemmPrecision.INT8_INT32, 128, 12288, 12288, GemmLayout.ACTIVATIONS_FIRST, algo(1), 47.9),
                new GemmTuningCache.Entry(GemmPrecision.FP16, 1, 36864, 12288, GemmLayout.WEIGHTS_FIRST, algo(2), 210.3));
        GemmTuningCache.write(file, entries);
        List<GemmTuningCache.Entry> read = GemmTuningCache.read(file);
        assertEquals(2, read.size());
        for (int i = 0; i < 2; i++) {
            assertEquals(entries.get(i).precision(), read.get(i).precision());
            assertEquals(entries.get(i).m(), read.get(i).m());
            assertEquals(entries.get(i).n(), read.get(i).n());
            assertEquals(entries.get(i).k(), read.get(i).k());
            assertEquals(entries.get(i).layout(), read.get(i).layout());
            assertArrayEquals(entries.get(i).algo(), read.get(i).algo());
            assertEquals(entries.get(i).micros(), read.get(i).micros());
        }
        try (var listing = Files.list(file.getParent())) {
            assertEquals(List.of(file), listing.toList(), "no temporary file left beside the cache");
        }
    }

    @Test
    void shouldRefuseFilesThatAreNotACacheSayingWhere() throws IOException {
        Path garbage = Files.writeString(temp.resolve("garbage.json"), "{not json");
        IOException malformed = assertThrows(IOException.class, () -> GemmTuningCache.read(garbage));
        assertTrue(malformed.getMessage().contains("garbage.json") && malformed.getMessage().contains("malformed JSON"),
                malformed.getMessage());

        Path other = Files.writeString(temp.resolve("other.json"), "{\"format\": 7, \"entries\": []}");
        IOException format = assertThrows(IOException.class, () -> GemmTuningCache.read(other));
        assertTrue(format.getMessage().contains("format 1"), format.getMessage());

        Path badEntry = Files.writeString(temp.resolve("bad.json"), """
                {"format": 1, "entries": [{"precision": "FP16", "m": 0, "n": 8, "k": 8, "layout": "WEIGHTS_FIRST",
                  "algo": "00", "micros": 1.0}]}""");
        IOException entry = assertThrows(IOException.class, () -> GemmTuningCache.read(badEntry));
        assertTrue(entry.getMessage().contains("entry 0") && entry.getMessage().contains("m must be a positive integer"),
                entry.getMessage());

        Path shortAlgo = Files.writeString(temp.resolve("short.json"), """
                {"format": 1, "entries": [{"precision": "FP16", "m": 1, "n": 8, "k": 8, "layout": "WEIGHTS_FIRST",
                  "algo": "0011", "micros": 1.0}]}""");
        IOException algo = assertThrows(IOException.class, () -> GemmTuningCache.read(shortAlgo));
        assertTrue(algo.getMessage().contains("64 bytes"), algo.getMessage());
    }
}
