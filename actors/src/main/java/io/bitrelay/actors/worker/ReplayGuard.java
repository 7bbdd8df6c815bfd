package io.bitrelay.actors.worker;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Refuses a frame of a step this stage already took on its inbound link: a replay of a genuine (tagged) frame.
 * The tag proves who made a frame, not that it is new; what makes it new is its (batch id, step), which the tag
 * covers. The scheduler never reuses a batch id and a batch's steps count up from 0 (one step of a batch in the
 * pipeline at a time), so each batch's steps must strictly increase. Batches are remembered most recently used
 * first, {@link #REMEMBERED_BATCHES} at most (resident batches stay; ended ones are forgotten in time); a new
 * pipeline gets a new key, so frames of the one it replaced fail the tag instead. Compute thread only.
 */
final class ReplayGuard {
    /** Far more than micro-batches in flight (one per device) plus calibration batches (one step each). */
    static final int REMEMBERED_BATCHES = 4096;

    private final Map<Long, Integer> lastStep = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, Integer> eldest) {
            return size() > REMEMBERED_BATCHES;
        }
    };

    /** Takes the step if it is later than every step of its batch taken so far; false for a replay. */
    boolean admit(long batchId, int step) {
        Integer last = lastStep.get(batchId);
        if (last != null && step <= last) {
            return false;
        }
        lastStep.put(batchId, step);
        return true;
    }

    /** The last step taken of {@code batchId}, for the rejection's reason; -1 if none. */
    int lastStep(long batchId) {
        return lastStep.getOrDefault(batchId, -1);
    }
}
