package io.bitrelay.actors.gateway;

import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.QueueOfferResult;

/**
 * Writes a streamed completion as OpenAI does: one {@code data: {chunk}} event per text delta, a last
 * chunk carrying the finish_reason (then, if asked, a usage chunk), then {@code data: [DONE]}. A failure
 * becomes a {@code data: {"error":{…}}} event followed by {@code data: [DONE]}, as OpenAI's clients
 * expect. The queue must hold every event a completion can produce (max_tokens + {@link #EXTRA_EVENTS}),
 * so an offer can only fail because the client went away.
 */
final class EventStreamSink implements CompletionSession.Sink {
    /** Events beyond one per token: text held back until the end, the finish chunk or error, usage, [DONE]. */
    static final int EXTRA_EVENTS = 4;

    private final BoundedSourceQueue<String> events; // each element one encoded event
    private final String id;
    private final long created;
    private final String model;
    private final boolean includeUsage;

    EventStreamSink(BoundedSourceQueue<String> events, String id, long created, String model, boolean includeUsage) {
        this.events = events;
        this.id = id;
        this.created = created;
        this.model = model;
        this.includeUsage = includeUsage;
    }

    static String event(String data) {
        return "data: " + data + "\n\n";
    }

    @Override
    public boolean text(String delta) {
        return offer(OpenAiJson.chunk(id, created, model, delta, null));
    }

    @Override
    public void finished(String finishReason, OpenAiJson.Usage usage) {
        offer(OpenAiJson.chunk(id, created, model, "", finishReason));
        if (includeUsage) {
            offer(OpenAiJson.usageChunk(id, created, model, usage));
        }
        done();
    }

    @Override
    public void failed(int status, String type, String message, String code) {
        offer(OpenAiJson.error(message, type, null, code));
        done();
    }

    private boolean offer(String data) {
        return events.offer(event(data)) == QueueOfferResult.enqueued();
    }

    private void done() {
        events.offer(event("[DONE]"));
        events.complete();
    }
}
