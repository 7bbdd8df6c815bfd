package io.bitrelay.actors.coordinator;

import io.bitrelay.runtime.generate.SamplingParams;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GenerationJobTest {
    private static final int EOS = 2;

    private static GenerationJob job(boolean stopOnEos, int minTokens) {
        return new GenerationJob("r", new int[]{5}, 8, SamplingParams.greedy(), stopOnEos, false, -1, minTokens);
    }

    @Test
    void shouldEndOnEosOnlyPastMinTokensAndNeverWhenIgnoringIt() {
        assertTrue(job(true, 0).stopRule(EOS).endsWithEos(EOS, 1));
        assertFalse(job(true, 0).stopRule(EOS).endsWithEos(7, 1));
        assertFalse(job(true, 3).stopRule(EOS).endsWithEos(EOS, 3), "the 3rd token of min_tokens 3 is passed on");
        assertTrue(job(true, 3).stopRule(EOS).endsWithEos(EOS, 4));
        assertFalse(job(false, 0).stopRule(EOS).endsWithEos(EOS, 8));
    }

    @Test
    void shouldHaveNoStopRuleWhenScoring() {
        assertNull(GenerationJob.scoring("s", new int[]{5, 6}, 0).stopRule(EOS));
    }

    @Test
    void shouldRefuseMinTokensBeyondMaxTokens() {
        assertThrows(IllegalArgumentException.class, () -> job(true, 9));
        assertThrows(IllegalArgumentException.class, () -> job(true, -1));
    }
}
