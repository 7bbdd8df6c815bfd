package io.bitrelay.actors.gateway;

import com.typesafe.config.Config;

import java.time.Duration;

/**
 * Tunables of the HTTP gateway, read from {@code bitrelay.gateway} in HOCON (documented in configs/bitrelay.conf
 * and docs/gateway.md).
 *
 * @param host            {@code host}: interface to bind (default 127.0.0.1; 0.0.0.0 for every interface)
 * @param port            {@code port}: TCP port, 0 picks a free one (default 8000)
 * @param requestTimeout  {@code request-timeout}: longest a completion may take from arrival to its last
 *                        token, queueing included; then it is cancelled and answered with an error
 *                        (default 10 minutes). Pekko HTTP's own request and idle timeouts are set just
 *                        above it so this one fires first.
 * @param shutdownTimeout {@code shutdown-timeout}: how long {@link GatewayHttpServer#close()} lets open
 *                        requests finish before closing their connections (default 5 s)
 * @param apiKeysFile     {@code api-keys-file}: a file of API keys, one a line ("" = none)
 * @param apiKeysEnv      {@code api-keys-env}: the environment variable holding comma-separated API keys
 *                        (default BITRELAY_API_KEYS; "" = none). With no key from either, /v1/ needs none.
 * @param allowUnauthenticated {@code allow-unauthenticated}: lets a gateway bound beyond loopback start without
 *                        API keys (default off: it refuses to start)
 * @param maxBodyBytes    {@code max-body-bytes}: largest request body; reading stops and 413 answers beyond it
 * @param maxInFlight     {@code max-in-flight}: completions admitted and not yet ended, queued ones included;
 *                        beyond it 429 with Retry-After
 * @param httpsKeyStore   {@code https.key-store}: a PKCS12 key store with the gateway's key and certificate chain
 *                        ("" = plain HTTP)
 * @param httpsPasswordEnv {@code https.password-env}: the environment variable holding that store's password
 */
public record GatewaySettings(String host, int port, Duration requestTimeout, Duration shutdownTimeout,
                              String apiKeysFile, String apiKeysEnv, boolean allowUnauthenticated,
                              long maxBodyBytes, int maxInFlight, String httpsKeyStore, String httpsPasswordEnv) {
    public static final String PATH = "bitrelay.gateway";
    public static final String DEFAULT_API_KEYS_ENV = "BITRELAY_API_KEYS";
    public static final String DEFAULT_HTTPS_PASSWORD_ENV = "BITRELAY_HTTPS_PASSWORD";

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
        if (apiKeysFile == null || apiKeysEnv == null) {
            throw new IllegalArgumentException(PATH + ".api-keys-file and api-keys-env must be strings (\"\" = none)");
        }
        if (maxBodyBytes < 1024) {
            throw new IllegalArgumentException(PATH + ".max-body-bytes must be >= 1 KiB, got " + maxBodyBytes);
        }
        if (maxInFlight < 1) {
            throw new IllegalArgumentException(PATH + ".max-in-flight must be >= 1, got " + maxInFlight);
        }
        if (httpsKeyStore == null || httpsPasswordEnv == null) {
            throw new IllegalArgumentException(PATH + ".https.key-store and https.password-env must be strings (\"\" = none)");
        }
    }

    public static GatewaySettings defaults() {
        return new GatewaySettings("127.0.0.1", 8000, Duration.ofMinutes(10), Duration.ofSeconds(5),
                "", DEFAULT_API_KEYS_ENV, false, 8L << 20, 512, "", DEFAULT_HTTPS_PASSWORD_ENV);
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
                config.hasPath("shutdown-timeout") ? config.getDuration("shutdown-timeout") : defaults.shutdownTimeout(),
                config.hasPath("api-keys-file") ? config.getString("api-keys-file") : defaults.apiKeysFile(),
                config.hasPath("api-keys-env") ? config.getString("api-keys-env") : defaults.apiKeysEnv(),
                config.hasPath("allow-unauthenticated") ? config.getBoolean("allow-unauthenticated")
                        : defaults.allowUnauthenticated(),
                config.hasPath("max-body-bytes") ? config.getBytes("max-body-bytes") : defaults.maxBodyBytes(),
                config.hasPath("max-in-flight") ? config.getInt("max-in-flight") : defaults.maxInFlight(),
                config.hasPath("https.key-store") ? config.getString("https.key-store") : defaults.httpsKeyStore(),
                config.hasPath("https.password-env") ? config.getString("https.password-env") : defaults.httpsPasswordEnv());
    }

    public GatewaySettings withPort(int newPort) {
        return new GatewaySettings(host, newPort, requestTimeout, shutdownTimeout, apiKeysFile, apiKeysEnv,
                allowUnauthenticated, maxBodyBytes, maxInFlight, httpsKeyStore, httpsPasswordEnv);
    }

    public GatewaySettings withHost(String newHost) {
        return new GatewaySettings(newHost, port, requestTimeout, shutdownTimeout, apiKeysFile, apiKeysEnv,
                allowUnauthenticated, maxBodyBytes, maxInFlight, httpsKeyStore, httpsPasswordEnv);
    }

    public GatewaySettings withRequestTimeout(Duration timeout) {
        return new GatewaySettings(host, port, timeout, shutdownTimeout, apiKeysFile, apiKeysEnv,
                allowUnauthenticated, maxBodyBytes, maxInFlight, httpsKeyStore, httpsPasswordEnv);
    }

    public GatewaySettings withApiKeysFile(String file) {
        return new GatewaySettings(host, port, requestTimeout, shutdownTimeout, file, apiKeysEnv,
                allowUnauthenticated, maxBodyBytes, maxInFlight, httpsKeyStore, httpsPasswordEnv);
    }

    public GatewaySettings withMaxBodyBytes(long bytes) {
        return new GatewaySettings(host, port, requestTimeout, shutdownTimeout, apiKeysFile, apiKeysEnv,
                allowUnauthenticated, bytes, maxInFlight, httpsKeyStore, httpsPasswordEnv);
    }

    public GatewaySettings withHttps(String keyStore, String passwordEnv) {
        return new GatewaySettings(host, port, requestTimeout, shutdownTimeout, apiKeysFile, apiKeysEnv,
                allowUnauthenticated, maxBodyBytes, maxInFlight, keyStore, passwordEnv);
    }

    public GatewaySettings withMaxInFlight(int requests) {
        return new GatewaySettings(host, port, requestTimeout, shutdownTimeout, apiKeysFile, apiKeysEnv,
                allowUnauthenticated, maxBodyBytes, requests, httpsKeyStore, httpsPasswordEnv);
    }
}
