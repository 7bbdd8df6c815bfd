package io.bitrelay.actors.gateway;

import io.bitrelay.actors.gateway.CollectingSink.JsonResponse;
import io.bitrelay.runtime.eval.TokenScore;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * A streamed completion's answer held back until the backend has queued the job. The coordinator decides
 * admission (its queue may be full) after the gateway handed the job on; once an event stream has said 200, a
 * refusal could only be an error event inside it, which clients do not retry on. So until the job is queued, a
 * failure is the answer itself — a real 429 with Retry-After, a 503 or a 504 in OpenAI's JSON — and only then does
 * the stream start. Text or an end that comes first (a backend that queues synchronously may be overtaken by its
 * first token) starts the stream too: the job was evidently queued.
 */
final class StreamAdmission implements CompletionSession.Sink {
    private final EventStreamSink stream;
    private final CompletionEndpoint.Reply.EventStream reply;
    private final Runnable closeStream;
    private final CompletableFuture<CompletionEndpoint.Reply> answer = new CompletableFuture<>();

    /** @param closeStream ends the stream that will not be sent, so nothing waits on it */
    StreamAdmission(EventStreamSink stream, CompletionEndpoint.Reply.EventStream reply, Runnable closeStream) {
        this.stream = stream;
        this.reply = reply;
        this.closeStream = closeStream;
    }

    /** The stream once the job is queued, or a refusal in JSON. */
    CompletionStage<CompletionEndpoint.Reply> answer() {
        return answer;
    }

    @Override
    public void queued() {
        answer.complete(reply);
    }

    @Override
    public void failed(int status, String type, String message, String code) {
        if (answer.complete(new CompletionEndpoint.Reply.Now(new JsonResponse(status, OpenAiJson.error(message, type, null, code))))) {
            closeStream.run();
        } else {
            stream.failed(status, type, message, code);
        }
    }

    @Override
    public boolean text(String delta) {
        answer.complete(reply); // a backend that never says queued still answers with its stream
        return stream.text(delta);
    }

    @Override
    public void finished(String finishReason, OpenAiJson.Usage usage) {
        answer.complete(reply); // a backend that never says queued still answers with its stream
        stream.finished(finishReason, usage);
    }

    @Override
    public void promptScores(List<TokenScore> scores) {
        stream.promptScores(scores);
    }

    @Override
    public void tokenScore(TokenScore score) {
        stream.tokenScore(score);
    }
}
