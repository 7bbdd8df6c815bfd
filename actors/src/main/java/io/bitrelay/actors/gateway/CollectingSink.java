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
    private final CompletionLogprobs logprobs;

    CollectingSink(String id, long created, String model) {
        this(id, created, model, "", null);
    }

    /**
     * @param echoedPrompt the prompt's text when the request asked for echo, else ""
     * @param logprobs     where the tokens' log-probabilities collect, or null when the request asked for none
     */
    CollectingSink(String id, long created, String model, String echoedPrompt, CompletionLogprobs logprobs) {
        this.id = id;
        this.created = created;
        this.model = model;
        this.logprobs = logprobs;
        text.append(echoedPrompt);
    }

    @Override
    public void promptScores(java.util.List<io.bitrelay.runtime.eval.TokenScore> scores) {
        if (logprobs != null) {
            logprobs.promptScores(scores);
        }
    }

    @Override
    public void tokenScore(io.bitrelay.runtime.eval.TokenScore score) {
        if (logprobs != null) {
            logprobs.generated(score);
        }
    }

    @Override
    public boolean text(String delta) {
        text.append(delta);
        return true;
    }

    @Override
    public void finished(String finishReason, OpenAiJson.Usage usage) {
        if (logprobs != null && !logprobs.promptComplete()) {
            failed(500, "server_error", "the backend finished before scoring every prompt token", null);
            return;
        }
        response.complete(new JsonResponse(200, OpenAiJson.completion(id, created, model, text.toString(), finishReason, usage,
                logprobs)));
    }

    @Override
    public void failed(int status, String type, String message, String code) {
        response.complete(new JsonResponse(status, OpenAiJson.error(message, type, null, code)));
    }
}
