package io.bitrelay.deploy;

import java.net.http.HttpRequest;

/**
 * The API key bitrelay's own clients (demo, eval --endpoint, bench serve) present to a gateway that requires one
 * (docs/gateway.md): {@code $BITRELAY_API_KEY}, else the first of {@code $BITRELAY_API_KEYS}, the variable a gateway
 * started from the same shell reads its keys from; none when neither is set.
 */
public final class ClientApiKey {
    private ClientApiKey() {
    }

    /** Adds {@code Authorization: Bearer KEY} when there is a key. */
    public static HttpRequest.Builder authorize(HttpRequest.Builder request) {
        String key = key();
        return key == null ? request : request.header("Authorization", "Bearer " + key);
    }

    private static String key() {
        String single = System.getenv("BITRELAY_API_KEY");
        if (single != null && !single.isBlank()) {
            return single.strip();
        }
        String list = System.getenv("BITRELAY_API_KEYS");
        if (list != null) {
            for (String key : list.split(",")) {
                if (!key.isBlank()) {
                    return key.strip();
                }
            }
        }
        return null;
    }
}
