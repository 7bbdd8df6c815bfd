package io.bitrelay.runtime.cuda.cublaslt;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GemmSearchTest {
    @Test
    void shouldNameWhatItSearches() {
        assertEquals("heuristics", GemmSearch.HEURISTICS.label());
        assertFalse(GemmSearch.HEURISTICS.variations());
        GemmSearch search = GemmSearch.variations(Duration.ofMillis(1500));
        assertTrue(search.variations());
        assertEquals("variations:1500ms", search.label());
    }

    @Test
    void shouldRefuseANegativeBudget() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GemmSearch.variations(Duration.ofMillis(-1)));
        assertTrue(e.getMessage().contains("PT-0.001S"), e.getMessage());
    }
}
