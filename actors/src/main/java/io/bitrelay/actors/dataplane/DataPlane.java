package io.bitrelay.actors.dataplane;


import java.lang.foreign.MemorySegment;
import java.util.function.Consumer;

/** The worker's view of the Aeron data plane: one sender per outbound link, one receiver per inbound link. */
public interface DataPlane extends AutoCloseable {

    /** Publishes whole frames to a link, waiting out back-pressure up to the configured deadline. */
    interface FrameSender extends AutoCloseable {
        /** @throws IllegalStateException naming the link when the frame could not be sent in time */
        void send(MemorySegment frame, long length);

        long backPressureEvents();

        @Override
        void close();
    }

    FrameSender sender(Link link);

    /**
     * Starts delivering the link's frames to {@code onFrame}, on the data plane's own thread; the segment is
     * valid only during the call. Returns the handle that stops delivery.
     */
    AutoCloseable receive(Link link, Consumer<MemorySegment> onFrame, Consumer<String> onError);

    @Override
    void close();
}
