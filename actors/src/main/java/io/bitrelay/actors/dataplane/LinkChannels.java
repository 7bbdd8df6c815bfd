package io.bitrelay.actors.dataplane;

import io.aeron.ChannelUriStringBuilder;
import io.aeron.CommonContext;

/**
 * Builds the channel of each link: {@code aeron:ipc} when both stages share a host (and so a media driver),
 * {@code aeron:udp?endpoint=destinationHost:port} otherwise. The subscriber binds the endpoint, the
 * publisher sends to it. Each link has its own stream id, {@code streamIdBase + sourceStage}, and by default
 * its own UDP port, {@code udpBasePort + destinationStage}, so stages that share a host never collide.
 */
public final class LinkChannels {

    /** Smallest MTU accepted here: Aeron's 32-byte data header, the chunk header and room for data. */
    public static final int MIN_MTU_BYTES = 128;

    /** Largest MTU Aeron accepts (64 KiB less the IP/UDP headers, a multiple of 32). */
    public static final int MAX_MTU_BYTES = 65_504;

    /**
     * @param streamIdBase stream id of the link out of stage 0; stage s publishes on base + s (default 1000)
     * @param udpBasePort  UDP port of the link into stage 0; stage d listens on base + d (default 40100)
     * @param udpMtuBytes  MTU of UDP links, a multiple of 32 in 128..65504 (default 1408: one Ethernet frame
     *                     of 1500 with IP/UDP headers; raise to 8960 on jumbo-frame networks)
     * @param ipcMtuBytes  MTU of IPC links, 0 to leave it to the driver (default 0: the driver's
     *                     ipc-mtu, 65504 from {@link MediaDriverHost}, so channels stay plain aeron:ipc)
     */
    public record Settings(int streamIdBase, int udpBasePort, int udpMtuBytes, int ipcMtuBytes) {

        public Settings {
            if (streamIdBase < 1) {
                throw new IllegalArgumentException("stream-id-base must be >= 1, got " + streamIdBase);
            }
            if (udpBasePort < 1 || udpBasePort > 65_535) {
                throw new IllegalArgumentException("udp-base-port must be in 1..65535, got " + udpBasePort);
            }
            checkMtu("udp-mtu", udpMtuBytes, false);
            checkMtu("ipc-mtu", ipcMtuBytes, true);
        }

        public static Settings defaults() {
            return new Settings(1000, 40_100, 1408, 0);
        }

        public Settings withStreamIdBase(int base) {
            return new Settings(base, udpBasePort, udpMtuBytes, ipcMtuBytes);
        }

        public Settings withUdpBasePort(int port) {
            return new Settings(streamIdBase, port, udpMtuBytes, ipcMtuBytes);
        }

        public Settings withUdpMtuBytes(int mtu) {
            return new Settings(streamIdBase, udpBasePort, mtu, ipcMtuBytes);
        }

        public Settings withIpcMtuBytes(int mtu) {
            return new Settings(streamIdBase, udpBasePort, udpMtuBytes, mtu);
        }

        private static void checkMtu(String key, int mtu, boolean zeroMeansDefault) {
            if (zeroMeansDefault && mtu == 0) {
                return;
            }
            // at least 128 so the first fragment of a message always holds the whole chunk header
            if (mtu < MIN_MTU_BYTES || mtu > MAX_MTU_BYTES || mtu % 32 != 0) {
                throw new IllegalArgumentException(key + " must be a multiple of 32 in " + MIN_MTU_BYTES + ".."
                        + MAX_MTU_BYTES + (zeroMeansDefault ? " (or 0 for the driver setting)" : "") + ", got " + mtu);
            }
        }
    }

    private final Settings settings;

    public LinkChannels(Settings settings) {
        this.settings = settings;
    }

    public Settings settings() {
        return settings;
    }

    /** The link from {@code sourceStage} to {@code destinationStage}, listening on the default port. */
    public Link link(int sourceStage, String sourceHost, int destinationStage, String destinationHost) {
        return link(sourceStage, sourceHost, destinationStage, destinationHost,
                settings.udpBasePort() + destinationStage);
    }

    /**
     * The link from {@code sourceStage} to {@code destinationStage}; hosts are compared by name (give both
     * ends the same spelling), and {@code destinationPort} is used only when they differ.
     */
    public Link link(int sourceStage, String sourceHost, int destinationStage, String destinationHost,
                     int destinationPort) {
        if (sourceStage < 0 || destinationStage < 0) {
            throw new IllegalArgumentException("stage indices must be >= 0, got " + sourceStage + " → "
                    + destinationStage);
        }
        String channel = sourceHost.equalsIgnoreCase(destinationHost)
                ? ipcChannel()
                : udpChannel(destinationHost, destinationPort);
        return new Link(sourceStage, destinationStage, channel, streamId(sourceStage));
    }

    public int streamId(int sourceStage) {
        return Math.addExact(settings.streamIdBase(), sourceStage);
    }

    public String ipcChannel() {
        ChannelUriStringBuilder uri = new ChannelUriStringBuilder().media(CommonContext.IPC_MEDIA);
        if (settings.ipcMtuBytes() != 0) {
            uri.mtu(settings.ipcMtuBytes());
        }
        return uri.build();
    }

    public String udpChannel(String host, int port) {
        if (port < 1 || port > 65_535) {
            throw new IllegalArgumentException("UDP port must be in 1..65535, got " + port);
        }
        // IPv6 literals need brackets before the port.
        String endpointHost = host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host;
        return new ChannelUriStringBuilder()
                .media(CommonContext.UDP_MEDIA)
                .endpoint(endpointHost + ":" + port)
                .mtu(settings.udpMtuBytes())
                .build();
    }
}
