package io.bitrelay.actors.gateway;

import io.bitrelay.actors.gateway.CollectingSink.JsonResponse;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.ExceptionHandler;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Instant;

/** The gateway's HTTP surface: /v1/completions, /v1/models, /health, /metrics. */
final class GatewayRoutes extends AllDirectives {
    private static final Logger LOG = LoggerFactory.getLogger(GatewayRoutes.class);

    private final CompletionEndpoint completions;
    private final GenerationBackend backend;
    private final ServedModel model;
    private final GatewayMetrics metrics;
    private final ContentType metricsContentType;
    private final long startedEpochSecond = Instant.now().getEpochSecond();

    GatewayRoutes(CompletionEndpoint completions, GenerationBackend backend, ServedModel model, GatewayMetrics metrics) {
        this.completions = completions;
        this.backend = backend;
        this.model = model;
        this.metrics = metrics;
        this.metricsContentType = ContentTypes.parse(metrics.textContentType());
    }

    Route route() {
        ExceptionHandler unexpected = ExceptionHandler.newBuilder()
                .match(RuntimeException.class, e -> {
                    LOG.error("request failed", e);
                    return complete(json(CompletionEndpoint.error(500, "server_error",
                            "internal error: " + e.getMessage(), null, null)));
                })
                .build();
        return handleExceptions(unexpected, () -> concat(
                path(PathMatchers.segment("v1").slash("completions"), () -> post(() ->
                        entity(Unmarshaller.entityToByteString(), body -> reply(completions.handle(body.utf8String()))))),
                path(PathMatchers.segment("v1").slash("models"), () -> get(() ->
                        complete(json(new JsonResponse(200, OpenAiJson.models(model, startedEpochSecond, backend.describe())))))),
                path("health", () -> get(() -> extractRequest(request -> complete(health())))),
                path("metrics", () -> get(() -> extractRequest(request ->
                        complete(HttpResponse.create().withEntity(HttpEntities.create(metricsContentType, metrics.scrapeText()))))))));
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
            case CompletionEndpoint.Reply.EventStream stream -> complete(HttpResponse.create()
                    .withEntity(HttpEntities.createChunked(MediaTypes.TEXT_EVENT_STREAM.toContentType(), stream.events()))
                    .addHeader(RawHeader.create("Cache-Control", "no-cache"))
                    .addHeader(RawHeader.create("X-Accel-Buffering", "no")));
        };
    }

    static HttpResponse json(JsonResponse response) {
        HttpResponse http = HttpResponse.create().withStatus(response.status())
                .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, response.body().getBytes(StandardCharsets.UTF_8)));
        return response.status() == 429 ? http.addHeader(RawHeader.create("Retry-After", "1")) : http;
    }
}
