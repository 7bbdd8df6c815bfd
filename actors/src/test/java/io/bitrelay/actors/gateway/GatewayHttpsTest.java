package io.bitrelay.actors.gateway;

import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The gateway over HTTPS from a PKCS12 key store whose password comes from the environment (issue 16). */
@Timeout(120)
class GatewayHttpsTest {
    private static final String PASSWORD_ENV = "TEST_GATEWAY_TLS_PASSWORD";
    private static final String PASSWORD = "s3cret-for-the-test";

    @TempDir
    static Path temp;
    static ActorSystem<Void> system;
    static OptTokenizer tokenizer;
    static Path keyStore;

    @BeforeAll
    static void start() throws Exception {
        tokenizer = OptTokenizer.load(TestModels.writeTiny(temp.resolve("tiny")));
        system = ActorSystem.create(Behaviors.empty(), "gateway-https-test");
        keyStore = temp.resolve("gateway.p12");
        // The JDK's own keytool: a self-signed EC certificate for 127.0.0.1, as an operator could make one.
        Process keytool = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "keytool").toString(),
                "-genkeypair", "-alias", "gateway", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=gateway",
                "-ext", "SAN=ip:127.0.0.1", "-validity", "2", "-storetype", "PKCS12", "-keystore", keyStore.toString(),
                "-storepass", PASSWORD).redirectErrorStream(true).start();
        String output = new String(keytool.getInputStream().readAllBytes());
        assertEquals(0, keytool.waitFor(), output);
    }

    @AfterAll
    static void stop() {
        system.terminate();
        tokenizer.close();
    }

    private static GatewayHttpServer server(GatewaySettings settings, Map<String, String> environment) {
        ScriptedBackend backend = new ScriptedBackend();
        return new GatewayHttpServer(system, backend, tokenizer, new ServedModel("tls", 2048, 50272),
                new GatewayMetrics(new PrometheusRegistry(), backend::queueDepth), settings, ApiKeys.none(),
                GatewayTls.load(settings, environment::get));
    }

    @Test
    void shouldServeOverHttpsAndRefusePlainHttp() throws Exception {
        GatewaySettings settings = GatewaySettings.defaults().withPort(0).withHttps(keyStore.toString(), PASSWORD_ENV);
        try (GatewayHttpServer server = server(settings, Map.of(PASSWORD_ENV, PASSWORD))) {
            InetSocketAddress address = server.bind();
            HttpClient trusting = HttpClient.newBuilder().sslContext(trusting(keyStore)).connectTimeout(Duration.ofSeconds(10)).build();
            HttpResponse<String> health = trusting.send(HttpRequest.newBuilder(
                    URI.create("https://127.0.0.1:" + address.getPort() + "/health")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode(), health.body());
            assertTrue(health.body().contains("ok"), health.body());
            HttpClient plain = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
            assertThrows(IOException.class, () -> plain.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                    + address.getPort() + "/health")).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()),
                    "plain HTTP on the HTTPS port");
            assertThrows(IOException.class, () -> HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("https://127.0.0.1:" + address.getPort() + "/health")).build(), HttpResponse.BodyHandlers.ofString()),
                    "a client that does not trust the certificate");
        }
    }

    @Test
    void shouldRefuseToStartNamingWhatIsMissing() {
        GatewaySettings settings = GatewaySettings.defaults().withPort(0).withHttps(keyStore.toString(), PASSWORD_ENV);
        IllegalArgumentException noPassword = assertThrows(IllegalArgumentException.class,
                () -> GatewayTls.load(settings, name -> null));
        assertTrue(noPassword.getMessage().contains("$" + PASSWORD_ENV), noPassword.getMessage());
        IllegalArgumentException wrongPassword = assertThrows(IllegalArgumentException.class,
                () -> GatewayTls.load(settings, name -> "wrong"));
        assertTrue(wrongPassword.getMessage().contains("bitrelay.gateway.https.key-store"), wrongPassword.getMessage());
        IllegalArgumentException noFile = assertThrows(IllegalArgumentException.class, () -> GatewayTls.load(
                settings.withHttps(temp.resolve("none.p12").toString(), PASSWORD_ENV), name -> PASSWORD));
        assertTrue(noFile.getMessage().contains("bitrelay.gateway.https.key-store") && noFile.getMessage().contains("none.p12"),
                noFile.getMessage());
        assertEquals(null, GatewayTls.load(GatewaySettings.defaults(), name -> PASSWORD), "no store: plain HTTP");
    }

    /** A client context that trusts exactly the gateway's self-signed certificate. */
    private static SSLContext trusting(Path store) throws Exception {
        KeyStore keys = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(store)) {
            keys.load(in, PASSWORD.toCharArray());
        }
        KeyStore trusted = KeyStore.getInstance("PKCS12");
        trusted.load(null, null);
        trusted.setCertificateEntry("gateway", keys.getCertificate("gateway"));
        TrustManagerFactory managers = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        managers.init(trusted);
        SSLContext context = SSLContext.getInstance("TLSv1.3");
        context.init(null, managers.getTrustManagers(), null);
        return context;
    }
}
