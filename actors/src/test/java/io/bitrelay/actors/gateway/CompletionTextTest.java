package io.bitrelay.actors.gateway;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(10)
class CompletionTextTest {
    /** Token i is the character i, so tests spell text as token ids. */
    private static final Function<int[], String> CHARS = ids -> {
        StringBuilder text = new StringBuilder();
        for (int id : ids) {
            text.append((char) id);
        }
        return text.toString();
    };

    private static CompletionText text(String... stops) {
        return new CompletionText(new IncrementalDetokenizer(CHARS), List.of(stops));
    }

    private static List<String> feed(CompletionText text, String characters) {
        List<String> deltas = new ArrayList<>();
        for (char c : characters.toCharArray()) {
            deltas.add(text.append(c));
            if (text.stopped()) {
                break;
            }
        }
        return deltas;
    }

    @Test
    void shouldCutBeforeTheStopStringAndNeverShowIt() {
        CompletionText text = text("END");
        List<String> deltas = feed(text, "abcENDxyz");
        assertTrue(text.stopped());
        assertEquals("abc", String.join("", deltas));
        assertEquals("abc", text.emittedText());
        assertEquals("", text.finish());
    }

    @Test
    void shouldHoldBackAPossibleStopPrefixAndReleaseItWhenItDiverges() {
        CompletionText text = text("END");
        assertEquals("a", text.append('a'));
        assertEquals("", text.append('E'));
        assertEquals("", text.append('N'));
        assertEquals("ENx", text.append('x'));
        assertFalse(text.stopped());
    }

    @Test
    void shouldReleaseHeldBackTextWhenTheSequenceEnds() {
        CompletionText text = text("END");
        assertEquals("ab", String.join("", feed(text, "abEN")));
        assertEquals("EN", text.finish());
        assertEquals("abEN", text.emittedText());
    }

    @Test
    void shouldStopAtTheEarliestOfSeveralStopStrings() {
        CompletionText text = text("zz", "b c", "c");
        assertEquals("a ", String.join("", feed(text, "a b c zz")));
        assertTrue(text.stopped());
    }

    @Test
    void shouldFindAStopStringThatOverlapsItsOwnPrefix() {
        CompletionText text = text("aab");
        assertEquals("xa", String.join("", feed(text, "xaaab")));
        assertTrue(text.stopped());
    }

    @Test
    void shouldPassEverythingThroughWithoutStopStrings() {
        CompletionText text = text();
        assertEquals(List.of("h", "e", "y"), feed(text, "hey"));
        assertEquals("", text.finish());
    }
}
