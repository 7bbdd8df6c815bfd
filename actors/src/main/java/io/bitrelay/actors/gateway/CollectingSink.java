package io.bitrelay.actors.gateway;

import java.util.concurrent.CompletableFuture;

/** Gathers a non-streamed completion and completes {@link #response} with the whole JSON answer. */
final class CollectingSink implements CompletionSession.Sink {
    /** An HTTP status and its JSON body. */
    record JsonResponse(int status, String body) {
    }

    final CompletableFuture<JsonResponse> response = new CompletableFuture<>();
    private final StringBuilder text = new StringBuilder();
    private final String id;
    private final long created;
    private final String model;

    CollectingSink(String id, long created, String model) {
        this.id = id;
        this.created = created;
        this.model = model;
    }

    @Override
    public boolean text(String delta) {
        text.append(delta);
        return true;
    }

    @Override
    public void finished(String finishReason, OpenAiJson.Usage usage) {
        response.complete(new JsonResponse(200, OpenAiJson.completion(id, created, model, text.toString(), finishReason, usage)));
    }

    @Override
    public void failed(int status, String type, String message) {
        response.complete(new JsonResponse(status, OpenAiJson.error(message, type, null, null)));
    }
}
