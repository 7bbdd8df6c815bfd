package io.bitrelay.actors.dataplane;

/** Told about every frame a subscriber gives up on; no part of such a frame reaches the {@link FrameHandler}. */
@FunctionalInterface
public interface DroppedFrameListener {

    /**
     * @param frameSequence the dropped frame's sequence, or -1 when no chunk header could be read
     * @param reason        what was inconsistent, e.g. "missing chunk 2 of 4"
     */
    void onFrameDropped(Link link, long frameSequence, String reason);
}
