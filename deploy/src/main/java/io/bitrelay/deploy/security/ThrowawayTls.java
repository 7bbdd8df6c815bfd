package io.bitrelay.deploy.security;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Map;

/**
 * Mutual TLS for a local cluster on one host: a fresh CA and one key store for 127.0.0.1 in a temporary directory,
 * under a random password that lives only in memory (a system property of this JVM, the environment of the worker
 * JVMs it starts). The stores are deleted when the JVM exits.
 */
public final class ThrowawayTls {
    /**
     * Not BITRELAY_TLS_PASSWORD: a user who has that set for a multi-node cluster would otherwise hand the nodes the
     * wrong password for these stores (the environment wins over the in-process property in ClusterTls).
     */
    static final String PASSWORD_ENV = "BITRELAY_THROWAWAY_TLS_PASSWORD";

    private final String passwordEnv;
    private final String password;

    private ThrowawayTls(String passwordEnv, String password) {
        this.passwordEnv = passwordEnv;
        this.password = password;
    }

    /** Writes the stores, points {@code settings}' bitrelay.security keys at them and makes the password known here. */
    public static ThrowawayTls create(Map<String, Object> settings) throws IOException {
        String passwordEnv = PASSWORD_ENV;
        byte[] secret = new byte[24];
        new SecureRandom().nextBytes(secret);
        String password = Base64.getUrlEncoder().withoutPadding().encodeToString(secret);
        Path directory = Files.createTempDirectory("bitrelay-tls-");
        ClusterCertificates ca = ClusterCertificates.newAuthority("local");
        ca.writeAuthority(directory, password.toCharArray());
        Path keyStore = ca.issueNode("127.0.0.1", directory, password.toCharArray());
        Files.delete(directory.resolve(ClusterCertificates.CA_STORE)); // nothing more is signed with it
        try (var files = Files.list(directory)) {
            files.forEach(f -> f.toFile().deleteOnExit());
        }
        directory.toFile().deleteOnExit();
        settings.put("bitrelay.security.tls", "on");
        settings.put("bitrelay.security.password-env", passwordEnv);
        settings.put("bitrelay.security.key-store", keyStore.toString());
        settings.put("bitrelay.security.trust-store", directory.resolve(ClusterCertificates.TRUST_STORE).toString());
        System.setProperty(passwordEnv, password); // ClusterTls reads it when the environment has none
        return new ThrowawayTls(passwordEnv, password);
    }

    /** Gives a worker JVM the password through its environment (never its command line). */
    public void export(Map<String, String> environment) {
        environment.put(passwordEnv, password);
    }
}
