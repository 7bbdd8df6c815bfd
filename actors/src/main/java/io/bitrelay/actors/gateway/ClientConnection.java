package io.bitrelay.actors.gateway;

import org.apache.pekko.http.javadsl.model.AttributeKey;
import org.apache.pekko.http.javadsl.model.HttpProtocols;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.headers.Connection;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One client's TCP connection to the gateway, so that a non-streamed completion learns that its client went away:
 * Pekko HTTP drops the answer of a strict response silently, and the job would run on for nobody (issue 16). The
 * server tags each request with its connection ({@link #KEY}); sessions register here and are told when the client
 * closes its side of it.
 *
 * <p>A request that is the connection's last by its own say ({@code Connection: close}, or HTTP/1.0 without
 * keep-alive) ends the stream of requests while it is still being answered, so for it a closed side says nothing:
 * {@link #of} gives it a connection that is never closed.
 */
final class ClientConnection {
    static final AttributeKey<ClientConnection> KEY = AttributeKey.create("bitrelay-client-connection", ClientConnection.class);

    /** The connection {@code request} came on, or one never closed where its closing would say nothing. */
    static ClientConnection of(HttpRequest request) {
        boolean lastRequest = request.getHeader(Connection.class)
                .map(header -> header.value().toLowerCase(java.util.Locale.ROOT).contains("close")).orElse(false)
                || request.protocol().equals(HttpProtocols.HTTP_1_0) && request.getHeader(Connection.class)
                .map(header -> !header.value().toLowerCase(java.util.Locale.ROOT).contains("keep-alive")).orElse(true);
        return lastRequest ? new ClientConnection() : request.getAttribute(KEY).orElseGet(ClientConnection::new);
    }

    private final Set<Runnable> onClose = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    /** Runs {@code action} when the connection closes (now, if it has); undo with {@link #forget} once it is moot. */
    void whenClosed(Runnable action) {
        onClose.add(action);
        if (closed && onClose.remove(action)) {
            action.run();
        }
    }

    void forget(Runnable action) {
        onClose.remove(action);
    }

    /** The connection is gone: everything still registered runs, once. */
    void closed() {
        closed = true;
        for (Runnable action : onClose) {
            if (onClose.remove(action)) {
                action.run();
            }
        }
    }
}
