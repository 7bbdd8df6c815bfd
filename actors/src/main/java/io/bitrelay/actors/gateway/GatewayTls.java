package io.bitrelay.actors.gateway;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.util.function.Function;

/**
 * The gateway's HTTPS identity: a PKCS12 key store holding its private key and certificate chain (what
 * {@code bitrelay certs} writes for a node, or any CA's), its password from the environment — never from a file or
 * a command line. Clients check the server; the gateway does not ask clients for certificates (API keys do that).
 */
final class GatewayTls {
    private GatewayTls() {
    }

    /**
     * The TLS context for {@code settings}, or null when {@code https.key-store} is empty (plain HTTP).
     *
     * @throws IllegalArgumentException naming the key or variable when the store is missing, unreadable, has no key,
     *                                  or the password is not in the environment
     */
    static SSLContext load(GatewaySettings settings, Function<String, String> environment) {
        String store = settings.httpsKeyStore();
        if (store.isEmpty()) {
            return null;
        }
        String storeKey = GatewaySettings.PATH + ".https.key-store";
        String passwordVariable = settings.httpsPasswordEnv();
        String password = passwordVariable.isEmpty() ? null : environment.apply(passwordVariable);
        if (password == null) {
            throw new IllegalArgumentException(storeKey + " is " + store + " but its password is not in the environment: set $"
                    + (passwordVariable.isEmpty() ? "(none named by " + GatewaySettings.PATH + ".https.password-env)" : passwordVariable));
        }
        Path path = Path.of(store);
        if (!Files.isRegularFile(path)) {
            throw new IllegalArgumentException(storeKey + ": " + store + " is not a file");
        }
        try (InputStream in = Files.newInputStream(path)) {
            KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(in, password.toCharArray());
            boolean hasKey = false;
            for (String alias : java.util.Collections.list(keys.aliases())) {
                hasKey |= keys.isKeyEntry(alias);
            }
            if (!hasKey) {
                throw new IllegalArgumentException(storeKey + ": " + store + " holds no private key");
            }
            KeyManagerFactory managers = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            managers.init(keys, password.toCharArray());
            SSLContext context = SSLContext.getInstance("TLSv1.3");
            context.init(managers.getKeyManagers(), null, null);
            return context;
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalArgumentException(storeKey + ": cannot read " + store + " as PKCS12 with the password in $"
                    + passwordVariable + ": " + e.getMessage(), e);
        }
    }
}
