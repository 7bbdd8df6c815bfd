package io.bitrelay.actors.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Turns {@code bitrelay.security.tls} into Pekko's settings: Artery over {@code tls-tcp} with mutual authentication
 * (Pekko's own ConfigSSLEngineProvider: TLS 1.3, each side presents its certificate and checks the other's against
 * the cluster CA in the trust store). A node whose certificate another CA signed cannot complete a handshake, so it
 * neither joins nor delivers a message. The password comes from the environment variable named by
 * {@code bitrelay.security.password-env}, never from a file; a JVM that embeds the nodes (LocalCluster) may set a
 * system property of that name in-process instead.
 */
public final class ClusterTls {
    private static final String SSL = "pekko.remote.artery.ssl.config-ssl-engine.";

    private ClusterTls() {
    }

    /** {@code config} with Pekko switched to mutual TLS when bitrelay.security.tls is on; unchanged otherwise. */
    public static Config apply(Config config) {
        Config security = config.getConfig("bitrelay.security");
        if (!security.getBoolean("tls")) {
            return config;
        }
        Path keyStore = existing(security, "key-store");
        Path trustStore = existing(security, "trust-store");
        String passwordEnv = security.getString("password-env");
        String password = System.getenv(passwordEnv);
        if (password == null) {
            password = System.getProperty(passwordEnv);
        }
        if (password == null || password.isEmpty()) {
            throw new IllegalArgumentException("bitrelay.security.tls is on but the environment variable " + passwordEnv
                    + " (bitrelay.security.password-env) holding the key-store password is not set");
        }
        return ConfigFactory.parseMap(pekkoSettings(keyStore, trustStore, password), "bitrelay.security")
                .withFallback(config).resolve();
    }

    /** Pekko's keys for mutual TLS with these PKCS12 stores (one password for both: what `bitrelay certs` writes). */
    public static Map<String, Object> pekkoSettings(Path keyStore, Path trustStore, String password) {
        Map<String, Object> settings = new HashMap<>();
        settings.put("pekko.remote.artery.transport", "tls-tcp");
        settings.put(SSL + "key-store", keyStore.toAbsolutePath().toString());
        settings.put(SSL + "trust-store", trustStore.toAbsolutePath().toString());
        settings.put(SSL + "key-store-password", password);
        settings.put(SSL + "key-password", password);
        settings.put(SSL + "trust-store-password", password);
        settings.put(SSL + "protocol", "TLSv1.3");
        settings.put(SSL + "enabled-algorithms", java.util.List.of("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"));
        settings.put(SSL + "require-mutual-authentication", "on");
        // Nodes address each other by whatever --host says (pod DNS names, IPs, 127.0.0.1): membership is proven by
        // the CA's signature on the peer's certificate, not by a name in it.
        settings.put(SSL + "hostname-verification", "off");
        return settings;
    }

    private static Path existing(Config security, String key) {
        String value = security.getString(key);
        if (value.isEmpty()) {
            throw new IllegalArgumentException("bitrelay.security.tls is on but bitrelay.security." + key
                    + " is empty (make the stores with `bitrelay certs`, or set bitrelay.security.tls = off for plain tcp)");
        }
        Path path = Path.of(value);
        if (!Files.isReadable(path)) {
            throw new IllegalArgumentException("bitrelay.security." + key + ": " + path + " is not a readable file");
        }
        return path;
    }
}
