package io.bitrelay.actors.dataplane;

import java.lang.foreign.MemorySegment;

/** Receives each complete frame of a link, in order, on the subscriber's agent thread. */
@FunctionalInterface
public interface FrameHandler {

    /**
     * @param frame read-only view of the whole frame, valid only until this call returns (the next frame
     *              is reassembled into the same memory): copy it or process it here
     */
    void onFrame(MemorySegment frame);
}
