package io.bitrelay.actors.gateway;

import com.typesafe.config.Config;

import java.time.Duration;

/**
 * Tunables of the HTTP gateway, read from {@code bitrelay.gateway} in HOCON.
 *
 * @param host            {@code host}: interface to bind (default 127.0.0.1; 0.0.0.0 for every interface)
 * @param port            {@code port}: TCP port, 0 picks a free one (default 8000)
 * @param requestTimeout  {@code request-timeout}: longest a completion may take from arrival to its last
 *                        token, queueing included; then it is cancelled and answered with an error
 *                        (default 10 minutes). Pekko HTTP's own request and idle timeouts are set just
 *                        above it so this one fires first.
 * @param shutdownTimeout {@code shutdown-timeout}: how long {@link GatewayHttpServer#close()} lets open
 *                        requests finish before closing their connections (default 5 s)
 */
public record GatewaySettings(String host, int port, Duration requestTimeout, Duration shutdownTimeout) {
    public static final String PATH = "bitrelay.gateway";

    public GatewaySettings {
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException(PATH + ".host must not be empty");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException(PATH + ".port must be in 0..65535, got " + port);
        }
        if (requestTimeout.isNegative() || requestTimeout.isZero()) {
            throw new IllegalArgumentException(PATH + ".request-timeout must be positive, got " + requestTimeout);
        }
        if (shutdownTimeout.isNegative()) {
            throw new IllegalArgumentException(PATH + ".shutdown-timeout must be >= 0, got " + shutdownTimeout);
        }
    }

    public static GatewaySettings defaults() {
        return new GatewaySettings("127.0.0.1", 8000, Duration.ofMinutes(10), Duration.ofSeconds(5));
    }

    /** Reads {@value #PATH}; missing keys take the defaults. */
    public static GatewaySettings fromConfig(Config root) {
        GatewaySettings defaults = defaults();
        if (!root.hasPath(PATH)) {
            return defaults;
        }
        Config config = root.getConfig(PATH);
        return new GatewaySettings(
                config.hasPath("host") ? config.getString("host") : defaults.host(),
                config.hasPath("port") ? config.getInt("port") : defaults.port(),
                config.hasPath("request-timeout") ? config.getDuration("request-timeout") : defaults.requestTimeout(),
                config.hasPath("shutdown-timeout") ? config.getDuration("shutdown-timeout") : defaults.shutdownTimeout());
    }

    public GatewaySettings withPort(int newPort) {
        return new GatewaySettings(host, newPort, requestTimeout, shutdownTimeout);
    }

    public GatewaySettings withHost(String newHost) {
        return new GatewaySettings(newHost, port, requestTimeout, shutdownTimeout);
    }

    public GatewaySettings withRequestTimeout(Duration timeout) {
        return new GatewaySettings(host, port, timeout, shutdownTimeout);
    }
}
