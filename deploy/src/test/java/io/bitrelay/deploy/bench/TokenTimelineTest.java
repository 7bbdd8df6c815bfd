package io.bitrelay.deploy.bench;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TokenTimelineTest {
    private static final long SECOND = 1_000_000_000L;

    @Test
    void shouldCountTokensAndFailuresInHalfOpenWindows() {
        TokenTimeline timeline = new TokenTimeline();
        for (long t = 0; t < 10 * SECOND; t += SECOND / 10) {
            timeline.token(t); // 10 tokens/s for 10 s
        }
        timeline.token(12 * SECOND);
        timeline.failure(3 * SECOND, "worker left");
        timeline.failure(5 * SECOND, "timeout");

        assertEquals(10.0, timeline.rate(0, 5 * SECOND), 1e-9);
        assertEquals(50, timeline.tokensBetween(5 * SECOND, 10 * SECOND), "the window's end is not in it");
        assertEquals(0.25, timeline.rate(10 * SECOND, 14 * SECOND), 1e-9, "a stalled window: the one token at 12 s in 4 s");
        assertEquals(12 * SECOND, timeline.firstTokenFrom(10 * SECOND));
        assertEquals(-1, timeline.firstTokenFrom(13 * SECOND));
        assertEquals(List.of(new TokenTimeline.Failure(3 * SECOND, "worker left")), timeline.failuresBetween(0, 5 * SECOND));
        assertEquals(101, timeline.totalTokens());
    }

    @Test
    void shouldFindWhereTheRateIsBackAfterAStall() {
        TokenTimeline timeline = new TokenTimeline();
        for (long t = 0; t < 20 * SECOND; t += SECOND / 10) {
            if (t < 5 * SECOND || t >= 8 * SECOND) {
                timeline.token(t); // 10 tokens/s, nothing from 5 s to 8 s
            }
        }
        assertEquals(8 * SECOND, timeline.firstWindowAtRate(5 * SECOND, 20 * SECOND, SECOND, 9.5), "[7.9 s, 8.9 s) holds only 9");
        assertEquals(7_900_000_000L, timeline.firstWindowAtRate(5 * SECOND, 20 * SECOND, SECOND, 9));
        assertEquals(-1, timeline.firstWindowAtRate(5 * SECOND, 8 * SECOND, SECOND, 9.5), "not back before 8 s");
        assertEquals(-1, timeline.firstWindowAtRate(0, 20 * SECOND, SECOND, 11), "never faster than 10 tokens/s");
    }

    @Test
    void shouldRefuseAnEmptyWindow() {
        assertThrows(IllegalArgumentException.class, () -> new TokenTimeline().rate(SECOND, SECOND));
    }

    @Test
    void shouldPlaceTheMiddleBetweenFirstAndLastAndRefuseShortPipelines() {
        assertEquals(List.of(0, 1, 2), List.of(StagePosition.FIRST.stageOf(3), StagePosition.MIDDLE.stageOf(3), StagePosition.LAST.stageOf(3)));
        assertEquals(2, StagePosition.MIDDLE.stageOf(5));
        assertEquals(StagePosition.LAST, StagePosition.parse(" Last"));
        IllegalArgumentException wrong = assertThrows(IllegalArgumentException.class, () -> StagePosition.parse("second"));
        assertEquals("a stage position is first, middle or last, got 'second'", wrong.getMessage());
        assertThrows(IllegalArgumentException.class, () -> StagePosition.MIDDLE.stageOf(2));
    }
}
