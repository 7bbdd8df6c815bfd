package io.bitrelay.actors.gateway;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.settings.ServerSettings;
import org.apache.pekko.actor.typed.ActorSystem;

import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.stream.javadsl.Flow;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The OpenAI-compatible HTTP front of a {@link GenerationBackend}, on Pekko HTTP:
 * {@code POST /v1/completions} (JSON or {@code stream: true} server-sent events), {@code GET /v1/models},
 * {@code GET /health} (503 while the backend is not ready) and {@code GET /metrics} (everything in the
 * {@link GatewayMetrics} registry). Runs on the given actor system, which the caller owns.
 */
public final class GatewayHttpServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(GatewayHttpServer.class);
    private static final long BIND_SECONDS = 30;
    /** Pekko's own timeouts sit this far above ours, so the gateway answers a slow request itself. */
    private static final Duration PEKKO_TIMEOUT_MARGIN = Duration.ofSeconds(10);

    private final ActorSystem<?> system;
    private final GatewaySettings settings;
    private final GatewayRoutes routes;
    /** Null for plain HTTP. */
    private final javax.net.ssl.SSLContext tls;
    private ServerBinding binding;

    public GatewayHttpServer(ActorSystem<?> system, GenerationBackend backend, OptTokenizer tokenizer, ServedModel model,
                             GatewayMetrics metrics, GatewaySettings settings) {
        this(system, backend, tokenizer, model, metrics, settings, ApiKeys.load(settings, System::getenv),
                GatewayTls.load(settings, System::getenv));
    }

    GatewayHttpServer(ActorSystem<?> system, GenerationBackend backend, OptTokenizer tokenizer, ServedModel model,
                      GatewayMetrics metrics, GatewaySettings settings, ApiKeys keys) {
        this(system, backend, tokenizer, model, metrics, settings, keys, null);
    }

    /** @param tls the HTTPS context ({@link GatewayTls}), or null for plain HTTP */
    GatewayHttpServer(ActorSystem<?> system, GenerationBackend backend, OptTokenizer tokenizer, ServedModel model,
                      GatewayMetrics metrics, GatewaySettings settings, ApiKeys keys, javax.net.ssl.SSLContext tls) {
        requireKeysBeyondLoopback(settings, keys);
        this.system = system;
        this.tls = tls;
        this.settings = settings;
        this.routes = new GatewayRoutes(
                new CompletionEndpoint(system, backend, tokenizer, model, metrics, settings.requestTimeout(),
                        settings.maxInFlight()),
                backend, model, metrics, keys, settings.maxBodyBytes());
        LOG.info("gateway {}, API keys: {}", tls != null ? "HTTPS (" + settings.httpsKeyStore() + ")" : "plain HTTP",
                keys.required() ? keys.count() + " key(s), required on /v1/"
                : "none (open: " + settings.host() + " is loopback or " + GatewaySettings.PATH + ".allow-unauthenticated is on)");
    }

    /** Anyone who can reach a gateway bound beyond loopback could use it: that takes keys, or saying so explicitly. */
    private static void requireKeysBeyondLoopback(GatewaySettings settings, ApiKeys keys) {
        if (keys.required() || settings.allowUnauthenticated() || loopback(settings.host())) {
            return;
        }
        throw new IllegalArgumentException("the gateway would listen on " + settings.host() + ", beyond loopback, with no"
                + " API key: set " + GatewaySettings.PATH + ".api-keys-file or the environment variable named by "
                + GatewaySettings.PATH + ".api-keys-env (" + (settings.apiKeysEnv().isEmpty() ? "none" : "$" + settings.apiKeysEnv())
                + "), or " + GatewaySettings.PATH + ".allow-unauthenticated = on to serve anyone");
    }

    private static boolean loopback(String host) {
        try {
            for (InetAddress address : InetAddress.getAllByName(host)) {
                if (!address.isLoopbackAddress()) {
                    return false;
                }
            }
            return true;
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException(GatewaySettings.PATH + ".host: unknown host " + host, e);
        }
    }

    /** Binds {@code settings.host():settings.port()}; returns the bound address (the real port when 0 was asked). */
    public synchronized InetSocketAddress bind() {
        if (binding != null) {
            throw new IllegalStateException("already bound to " + binding.localAddress());
        }
        try {
            var server = Http.get(system).newServerAt(settings.host(), settings.port()).withSettings(serverSettings());
            if (tls != null) {
                server = server.enableHttps(org.apache.pekko.http.javadsl.ConnectionContext.httpsServer(tls));
            }
            binding = server
                    .bindFlow(perConnection(routes.route().flow(system)))
                    .toCompletableFuture()
                    .get(BIND_SECONDS, TimeUnit.SECONDS);
            // On SIGTERM Pekko's JVM hook may run coordinated shutdown before close() does: unbind, then let open
            // responses finish (a stream's last events, an error event and [DONE] included) up to shutdown-timeout
            // before the actor system, whose streams carry them, terminates; else a stream was cut mid-flight
            binding.addToCoordinatedShutdown(settings.shutdownTimeout(), system);
        } catch (ExecutionException e) {
            throw new IllegalStateException("cannot bind the gateway to " + settings.host() + ":" + settings.port()
                    + ": " + e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException("binding the gateway to " + settings.host() + ":" + settings.port()
                    + " took over " + BIND_SECONDS + " s", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while binding the gateway", e);
        }
        return binding.localAddress();
    }

    /**
     * The routes once per TCP connection, each request tagged with its {@link ClientConnection}, which is told when
     * the client closes its side: the stream of requests ends, even while an answer is still being computed (Pekko
     * HTTP never fails the response side for that, akka-http issue 1718). So a client that hangs up on a non-streamed
     * completion cancels it.
     */
    private static Flow<HttpRequest, HttpResponse, NotUsed> perConnection(Flow<HttpRequest, HttpResponse, NotUsed> routes) {
        return Flow.fromMaterializer((materializer, attributes) -> {
            ClientConnection connection = new ClientConnection();
            return Flow.of(HttpRequest.class)
                    .watchTermination((notUsed, done) -> {
                        done.whenComplete((ok, failure) -> connection.closed());
                        return notUsed;
                    })
                    .map(request -> request.addAttribute(ClientConnection.KEY, connection))
                    .via(routes);
        }).mapMaterializedValue(future -> NotUsed.getInstance());
    }

    private ServerSettings serverSettings() {
        long timeoutSeconds = settings.requestTimeout().plus(PEKKO_TIMEOUT_MARGIN).toSeconds();
        Config overrides = ConfigFactory.parseString(
                "pekko.http.server.request-timeout = " + timeoutSeconds + "s\n"
                        + "pekko.http.server.idle-timeout = " + (timeoutSeconds + PEKKO_TIMEOUT_MARGIN.toSeconds()) + "s\n"
                        // Enforced while the body is read: reading stops at the limit, and ErrorAnswers answers 413.
                        + "pekko.http.server.parsing.max-content-length = " + settings.maxBodyBytes() + "\n");
        return ServerSettings.create(overrides.withFallback(system.settings().config()));
    }

    /** The bound address, or null before {@link #bind()} and after {@link #close()}. */
    public synchronized InetSocketAddress address() {
        return binding == null ? null : binding.localAddress();
    }

    /**
     * Stops accepting connections, lets open requests run up to {@code shutdown-timeout}, then closes the
     * rest. The backend and the actor system stay up.
     */
    @Override
    public synchronized void close() {
        if (binding == null) {
            return;
        }
        try {
            binding.terminate(settings.shutdownTimeout()).toCompletableFuture()
                    .get(settings.shutdownTimeout().toSeconds() + BIND_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("the gateway on " + binding.localAddress() + " did not shut down cleanly", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            binding = null;
        }
    }
}
