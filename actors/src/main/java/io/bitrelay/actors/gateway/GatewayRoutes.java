package io.bitrelay.actors.gateway;

import io.bitrelay.actors.gateway.CollectingSink.JsonResponse;
import io.bitrelay.actors.gateway.GatewayMetrics.Outcome;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaType;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.function.Supplier;

/**
 * The gateway's HTTP surface: /v1/completions, /v1/models (behind the API keys, when there are any), /health,
 * /metrics. Every error is answered in OpenAI's JSON shape ({@link ErrorAnswers}).
 */
final class GatewayRoutes extends AllDirectives {
    /** Seconds a client refused with 429 is asked to wait; a step of the pipeline frees places well within it. */
    static final int RETRY_AFTER_SECONDS = 1;

    private final CompletionEndpoint completions;
    private final GenerationBackend backend;
    private final ServedModel model;
    private final GatewayMetrics metrics;
    private final ApiKeys keys;
    private final ErrorAnswers errors;
    private final ContentType metricsContentType;
    private final long startedEpochSecond = Instant.now().getEpochSecond();

    GatewayRoutes(CompletionEndpoint completions, GenerationBackend backend, ServedModel model, GatewayMetrics metrics,
                  ApiKeys keys, long maxBodyBytes) {
        this.completions = completions;
        this.backend = backend;
        this.model = model;
        this.metrics = metrics;
        this.keys = keys;
        this.errors = new ErrorAnswers(maxBodyBytes);
        this.metricsContentType = ContentTypes.parse(metrics.textContentType());
    }

    Route route() {
        return handleExceptions(errors.exceptions(), () -> handleRejections(errors.rejections(), () -> concat(
                pathPrefix("v1", () -> authorized(() -> concat(
                        path("completions", () -> post(this::completion)),
                        path("models", () -> get(() -> complete(json(new JsonResponse(200,
                                OpenAiJson.models(model, startedEpochSecond, backend.describe()))))))))),
                // Open to probes and scrapers, which carry no key; neither says anything about any request's content.
                path("health", () -> get(() -> complete(health()))),
                path("metrics", () -> get(() ->
                        complete(HttpResponse.create().withEntity(HttpEntities.create(metricsContentType, metrics.scrapeText()))))))));
    }

    private Route authorized(Supplier<Route> inner) {
        if (!keys.required()) {
            return inner.get();
        }
        return optionalHeaderValueByName("Authorization", header -> switch (keys.check(header.orElse(null))) {
            case ACCEPTED -> inner.get();
            case MISSING -> unauthorized("You didn't provide an API key. You need to provide your API key in an"
                    + " Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", null);
            case NOT_BEARER -> unauthorized("The Authorization header must be 'Bearer YOUR_KEY'.", null);
            case WRONG -> unauthorized("Incorrect API key provided.", "invalid_api_key");
        });
    }

    private Route unauthorized(String message, String code) {
        metrics.refused(Outcome.UNAUTHORIZED);
        return complete(json(CompletionEndpoint.error(401, "invalid_request_error", message, null, code))
                .addHeader(RawHeader.create("WWW-Authenticate", "Bearer")));
    }

    /** POST bodies are JSON; the body is read up to max-body-bytes (server settings) and never decoded leniently. */
    private Route completion() {
        return extractRequest(request -> {
            ContentType type = request.entity().getContentType();
            if (!isJson(type.mediaType())) {
                metrics.refused(Outcome.INVALID);
                return complete(json(CompletionEndpoint.error(415, "invalid_request_error", "Content-Type must be"
                        + " application/json, got " + type, null, "unsupported_media_type")));
            }
            ClientConnection connection = ClientConnection.of(request);
            return entity(Unmarshaller.entityToByteString(),
                    body -> reply(completions.handle(body.asByteBuffer(), connection)));
        });
    }

    private static boolean isJson(MediaType type) {
        return type.isApplication() && type.subType().equals("json");
    }

    private HttpResponse health() {
        return backend.ready()
                ? json(new JsonResponse(200, OpenAiJson.status("ok")))
                : json(new JsonResponse(503, OpenAiJson.status("unavailable")));
    }

    private Route reply(CompletionEndpoint.Reply reply) {
        return switch (reply) {
            case CompletionEndpoint.Reply.Now now -> complete(json(now.response()));
            case CompletionEndpoint.Reply.Later later -> completeWithFuture(later.response().thenApply(GatewayRoutes::json));
            case CompletionEndpoint.Reply.EventStream stream -> complete(eventStream(stream));
            case CompletionEndpoint.Reply.Deferred deferred -> completeWithFuture(deferred.reply().thenApply(answer -> switch (answer) {
                case CompletionEndpoint.Reply.Now now -> json(now.response());
                case CompletionEndpoint.Reply.EventStream stream -> eventStream(stream);
                default -> throw new IllegalStateException("a deferred answer is a stream or a refusal, got " + answer);
            }));
        };
    }

    private static HttpResponse eventStream(CompletionEndpoint.Reply.EventStream stream) {
        return HttpResponse.create()
                .withEntity(HttpEntities.createChunked(MediaTypes.TEXT_EVENT_STREAM.toContentType(), stream.events()))
                .addHeader(RawHeader.create("Cache-Control", "no-cache"))
                .addHeader(RawHeader.create("X-Accel-Buffering", "no"));
    }

    static HttpResponse json(JsonResponse response) {
        HttpResponse http = HttpResponse.create().withStatus(response.status())
                .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, response.body().getBytes(StandardCharsets.UTF_8)));
        return response.status() == 429
                ? http.addHeader(RawHeader.create("Retry-After", Integer.toString(RETRY_AFTER_SECONDS)))
                : http;
    }
}
