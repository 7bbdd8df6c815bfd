package io.bitrelay.actors.dataplane;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.Consumer;

/** The data plane over Aeron: this host's shared media driver, a publisher per outbound link, a subscriber agent per inbound link. */
public final class AeronDataPlane implements DataPlane {
    private final MediaDriverHost host;
    private final LinkPublisher.Settings publisherSettings;
    private final LinkSubscriber.Settings subscriberSettings;

    private AeronDataPlane(MediaDriverHost host, LinkPublisher.Settings publisherSettings,
                           LinkSubscriber.Settings subscriberSettings) {
        this.host = host;
        this.publisherSettings = publisherSettings;
        this.subscriberSettings = subscriberSettings;
    }

    /**
     * @param mode embedded (own driver), external (the host's shared driver must run) or auto (use one if running)
     * @param idle how this JVM's data-plane threads wait for work: subscribers, publishers through back-pressure,
     *             and the driver's threads when it starts one
     */
    public static AeronDataPlane open(Path aeronDirectory, MediaDriverHost.DriverMode mode, Duration publishTimeout,
                                      IdleSettings idle) {
        MediaDriverHost host = MediaDriverHost.start(MediaDriverHost.Settings.defaults()
                .withAeronDirectory(aeronDirectory).withMode(mode).withDriverIdle(idle));
        return new AeronDataPlane(host,
                LinkPublisher.Settings.defaults().withPublishTimeoutMillis(publishTimeout.toMillis()).withRetryIdle(idle),
                LinkSubscriber.Settings.defaults().withIdle(idle));
    }

    @Override
    public FrameSender sender(Link link) {
        LinkPublisher publisher = new LinkPublisher(host.aeron(), link, publisherSettings);
        return new FrameSender() {
            @Override
            public void send(MemorySegment frame, long length) {
                publisher.publish(frame.asSlice(0, length));
            }

            @Override
            public long backPressureEvents() {
                return publisher.stats().backPressured();
            }

            @Override
            public void close() {
                publisher.close();
            }
        };
    }

    @Override
    public AutoCloseable receive(Link link, Consumer<MemorySegment> onFrame, Consumer<String> onError) {
        return new LinkSubscriber(host.aeron(), link, onFrame::accept,
                (source, frameSequence, reason) -> onError.accept("frame " + frameSequence + " on " + source.describe()
                        + " dropped: " + reason),
                subscriberSettings).start();
    }

    @Override
    public void close() {
        host.close();
    }
}
