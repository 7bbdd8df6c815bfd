package io.bitrelay.actors.worker;

import io.bitrelay.runtime.wire.BatchLayout;

/**
 * The rule every stage's KV caches keep, on the CPU or the GPU: a sequence starts at position 0 with no cache,
 * and every later chunk continues exactly where the stage's cache for it ends.
 */
final class CacheContinuity {
    private CacheContinuity() {
    }

    /**
     * @param held   positions {@code holder} keeps for the entry's sequence, or -1 when it keeps no cache for it
     * @param holder who holds the caches, for the message ("stage 2", "the GPU stage")
     * @return true when the entry starts a sequence, whose cache the caller makes
     * @throws IllegalStateException when the entry does not continue the cache
     */
    static boolean startsSequence(BatchLayout.Entry entry, int held, String holder) {
        if (entry.startPosition() == 0) {
            if (held >= 0) {
                throw new IllegalStateException("sequence " + entry.sequenceId() + " starts again but " + holder
                        + " still holds " + held + " of its positions");
            }
            return true;
        }
        if (held != entry.startPosition()) {
            throw new IllegalStateException("sequence " + entry.sequenceId() + " continues at position " + entry.startPosition()
                    + " but " + holder + " holds " + (held < 0 ? "no cache" : held + " positions"));
        }
        return false;
    }
}
