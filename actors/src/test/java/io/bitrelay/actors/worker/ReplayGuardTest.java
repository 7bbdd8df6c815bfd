package io.bitrelay.actors.worker;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(10)
class ReplayGuardTest {

    @Test
    void shouldTakeEachBatchsStepsInIncreasingOrderOnly() {
        ReplayGuard guard = new ReplayGuard();
        assertTrue(guard.admit(7, 0));
        assertTrue(guard.admit(8, 0), "another batch's step 0");
        assertTrue(guard.admit(7, 1));
        assertFalse(guard.admit(7, 1), "the same step again: a replay");
        assertFalse(guard.admit(7, 0), "an earlier step: a replay");
        assertEquals(1, guard.lastStep(7));
        assertTrue(guard.admit(7, 5), "steps may skip (a frame lost on the way fails its batch)");
        assertTrue(guard.admit(-3, 0), "calibration batches (negative ids) too");
    }

    @Test
    void shouldKeepResidentBatchesWhileForgettingOldOnes() {
        ReplayGuard guard = new ReplayGuard();
        guard.admit(1, 4);
        for (long batch = 100; batch < 100 + ReplayGuard.REMEMBERED_BATCHES; batch++) {
            guard.admit(batch, 0);
            if (batch % 1000 == 0) {
                assertTrue(guard.admit(1, 5 + (int) (batch / 1000)), "the resident batch keeps stepping");
            }
        }
        assertFalse(guard.admit(1, 4), "a batch in use is remembered");
        assertEquals(-1, guard.lastStep(100), "the oldest one-step batch is forgotten");
    }
}
