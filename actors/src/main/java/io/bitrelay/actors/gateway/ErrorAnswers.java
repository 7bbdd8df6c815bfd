package io.bitrelay.actors.gateway;

import org.apache.pekko.http.javadsl.model.HttpEntity;
import org.apache.pekko.http.javadsl.model.HttpMethod;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.ExceptionHandler;
import org.apache.pekko.http.javadsl.server.MalformedRequestContentRejection;
import org.apache.pekko.http.javadsl.server.MethodRejection;
import org.apache.pekko.http.javadsl.server.RejectionHandler;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.stream.Collectors;

/**
 * Every refusal the routes do not write themselves, in OpenAI's error JSON
 * ({@code {"error":{"message","type","param","code"}}}): unknown paths (404), a method a path does not take (405,
 * with Allow), a body over {@code max-body-bytes} (413, naming our key rather than Pekko's), and whatever else
 * Pekko's default rejection handler answers, its text moved into the JSON message. An unexpected exception is a
 * 500 in the same shape.
 */
final class ErrorAnswers extends AllDirectives {
    private static final Logger LOG = LoggerFactory.getLogger(ErrorAnswers.class);
    private static final String ROUTES = "POST /v1/completions, GET /v1/models, GET /health, GET /metrics";

    private final long maxBodyBytes;

    ErrorAnswers(long maxBodyBytes) {
        this.maxBodyBytes = maxBodyBytes;
    }

    ExceptionHandler exceptions() {
        return ExceptionHandler.newBuilder()
                .match(EntityStreamSizeException.class, e -> complete(tooLarge()))
                .match(RuntimeException.class, e -> {
                    LOG.error("request failed", e);
                    return complete(GatewayRoutes.json(CompletionEndpoint.error(500, "server_error",
                            "internal error: " + e.getMessage(), null, null)));
                })
                .build();
    }

    RejectionHandler rejections() {
        return RejectionHandler.newBuilder()
                .handleAll(MethodRejection.class, this::methodNotAllowed)
                .handle(MalformedRequestContentRejection.class, rejection -> rejection.getCause() instanceof EntityStreamSizeException
                        ? complete(tooLarge())
                        : complete(GatewayRoutes.json(CompletionEndpoint.error(400, "invalid_request_error",
                                "The body of the request could not be read: " + rejection.message(), null, null))))
                .handleNotFound(extractRequest(request -> complete(GatewayRoutes.json(CompletionEndpoint.error(404,
                        "invalid_request_error", "Unknown request URL: " + request.method().name() + " "
                                + request.getUri().path() + ". This server serves " + ROUTES + ".", null, "unknown_url")))))
                .build()
                .withFallback(RejectionHandler.defaultHandler())
                .mapRejectionResponse(ErrorAnswers::asJson);
    }

    private Route methodNotAllowed(List<MethodRejection> rejections) {
        String allowed = rejections.stream().map(MethodRejection::supported).map(HttpMethod::name).distinct()
                .collect(Collectors.joining(", "));
        return extractRequest(request -> complete(GatewayRoutes.json(CompletionEndpoint.error(405,
                "invalid_request_error", request.method().name() + " is not allowed on " + request.getUri().path()
                        + "; use " + allowed + ".", null, "method_not_allowed"))
                .addHeader(RawHeader.create("Allow", allowed))));
    }

    private HttpResponse tooLarge() {
        return GatewayRoutes.json(CompletionEndpoint.error(413, "invalid_request_error", "The request body is larger"
                + " than this server takes: " + maxBodyBytes + " bytes (" + GatewaySettings.PATH + ".max-body-bytes).",
                null, "request_too_large"));
    }

    /** Pekko's own refusals come as text: the same status, the text as an OpenAI error message. */
    private static HttpResponse asJson(HttpResponse response) {
        if (response.entity().getContentType().mediaType().equals(MediaTypes.APPLICATION_JSON)
                || !(response.entity() instanceof HttpEntity.Strict strict)) {
            return response;
        }
        int status = response.status().intValue();
        return GatewayRoutes.json(CompletionEndpoint.error(status, status >= 500 ? "server_error" : "invalid_request_error",
                strict.getData().utf8String(), null, null)).addHeaders(response.getHeaders());
    }
}
