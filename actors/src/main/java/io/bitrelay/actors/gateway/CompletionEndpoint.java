package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.GenerationJob;

import io.bitrelay.actors.gateway.CollectingSink.JsonResponse;
import io.bitrelay.actors.gateway.GatewayMetrics.Outcome;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadLocalRandom;

/**
 * {@code POST /v1/completions}: validates and tokenizes the request, hands the job to the backend at once
 * (so jobs reach it in arrival order) and answers with the collected JSON or an event stream. Refusals
 * never queue anything: 400 for a bad request (not UTF-8, not JSON, a field out of range, a prompt over the
 * context), 404 for another model, 429 beyond max-in-flight or when the backend's queue is full, 503 when it
 * is not ready.
 */
final class CompletionEndpoint {
    /** What the route answers with. */
    sealed interface Reply {
        record Now(JsonResponse response) implements Reply {
        }

        record Later(CompletionStage<JsonResponse> response) implements Reply {
        }

        /** Encoded SSE events, {@code data: …\n\n} each. */
        record EventStream(Source<ByteString, NotUsed> events) implements Reply {
        }

        /** A streamed completion's answer once the backend queued it: an {@link EventStream}, or a refusal {@link Now}. */
        record Deferred(CompletionStage<Reply> reply) implements Reply {
        }
    }

    private final ActorSystem<?> system;
    private final GenerationBackend backend;
    private final OptTokenizer tokenizer;
    private final ServedModel model;
    private final GatewayMetrics metrics;
    private final Duration requestTimeout;
    private final PromptBound promptBound;
    private final InFlightLimit inFlight;

    CompletionEndpoint(ActorSystem<?> system, GenerationBackend backend, OptTokenizer tokenizer, ServedModel model,
                       GatewayMetrics metrics, Duration requestTimeout, int maxInFlight) {
        this.system = system;
        this.backend = backend;
        this.tokenizer = tokenizer;
        this.model = model;
        this.metrics = metrics;
        this.requestTimeout = requestTimeout;
        this.promptBound = new PromptBound(model.contextLength(), tokenizer.maxBytesPerToken());
        this.inFlight = new InFlightLimit(maxInFlight);
    }

    /**
     * @param body       the request body as it came (at most max-body-bytes)
     * @param connection the client's connection: a non-streamed completion is cancelled when it closes
     */
    Reply handle(ByteBuffer body, ClientConnection connection) {
        long arrivalNanos = System.nanoTime();
        CompletionRequest request;
        try {
            StrictUtf8.check(body);
            request = CompletionRequest.parse(body);
            if (request.model() != null && !request.model().equals(model.id())) {
                throw new InvalidRequestException(404, "The model '" + request.model() + "' does not exist; this"
                        + " server serves '" + model.id() + "'", "model", "model_not_found");
            }
            if (request.prompt() != null) {
                promptBound.check(request.prompt(), request.maxTokens());
            }
        } catch (InvalidRequestException e) {
            metrics.refused(Outcome.INVALID);
            return new Reply.Now(error(e.status(), "invalid_request_error", e.getMessage(), e.param(), e.code()));
        }
        try {
            inFlight.acquire(); // before tokenizing: under overload the gateway spends nothing on what it refuses
        } catch (RejectedExecutionException e) {
            metrics.refused(Outcome.REJECTED);
            return new Reply.Now(overloaded(e));
        }
        boolean admitted = false;
        try {
            Reply reply = admit(request, arrivalNanos, connection);
            admitted = !(reply instanceof Reply.Now);
            return reply;
        } finally {
            if (!admitted) {
                inFlight.release();
            }
        }
    }

    /** Tokenizes and hands the job over; a {@link Reply.Now} is a refusal, anything else holds an in-flight place. */
    private Reply admit(CompletionRequest request, long arrivalNanos, ClientConnection connection) {
        int[] promptTokens;
        try {
            promptTokens = request.promptTokens() != null ? checkVocabulary(request.promptTokens()) : tokenizer.encode(request.prompt());
            checkContext(promptTokens.length, request.maxTokens());
        } catch (InvalidRequestException e) {
            metrics.refused(Outcome.INVALID);
            return new Reply.Now(error(e.status(), "invalid_request_error", e.getMessage(), e.param(), e.code()));
        }
        String id = "cmpl-" + HexFormat.of().formatHex(randomBytes());
        long created = Instant.now().getEpochSecond();
        int logprobs = request.logprobs() == null ? -1 : request.logprobs();
        GenerationJob job = request.scoresPrompt()
                ? GenerationJob.scoring(id, promptTokens, Math.max(0, logprobs))
                : new GenerationJob(id, promptTokens, request.maxTokens(),
                        new SamplingParams(request.temperature(), request.topK(), request.topP(), request.seedFor(id)),
                        !request.ignoreEos(), false, logprobs, request.minTokens());
        CompletionText text = new CompletionText(new IncrementalDetokenizer(tokenizer::decode), request.stop());
        if (request.stream()) {
            Pair<BoundedSourceQueue<String>, Source<String, NotUsed>> queue =
                    Source.<String>queue(request.maxTokens() + EventStreamSink.EXTRA_EVENTS).preMaterialize(system);
            CompletionSession[] session = new CompletionSession[1];
            Source<ByteString, NotUsed> events = queue.second()
                    .map(ByteString::fromString)
                    .watchTermination((notUsed, done) -> {
                        // Completes when the stream ends either way; after [DONE] the session has already ended.
                        done.whenComplete((ok, failure) -> session[0].clientGone());
                        return NotUsed.getInstance();
                    });
            StreamAdmission admission = new StreamAdmission(
                    new EventStreamSink(queue.first(), id, created, model.id(), request.includeUsage()),
                    new Reply.EventStream(events), queue.first()::complete);
            session[0] = new CompletionSession(id, backend, metrics, text, promptTokens.length, arrivalNanos, admission);
            JsonResponse refused = submit(job, session[0]);
            if (refused != null) {
                queue.first().complete();
                return new Reply.Now(refused);
            }
            watch(connection, session[0]); // until the stream is sent, only the connection tells that the client left
            return new Reply.Deferred(admission.answer());
        }
        String echoed = "";
        CompletionLogprobs collected = null;
        if (request.echo()) {
            echoed = request.prompt() != null ? request.prompt() : tokenizer.decode(promptTokens);
        }
        if (logprobs >= 0) {
            collected = new CompletionLogprobs(token -> tokenizer.decode(new int[]{token}), logprobs,
                    request.echo() ? 0 : echoedLength(request, promptTokens));
            if (request.echo()) {
                collected.startPrompt(promptTokens);
            }
        }
        CollectingSink sink = new CollectingSink(id, created, model.id(), echoed, collected);
        CompletionSession session = new CompletionSession(id, backend, metrics, text, promptTokens.length, arrivalNanos, sink);
        JsonResponse refused = submit(job, session);
        if (refused != null) {
            return new Reply.Now(refused);
        }
        // A strict answer has no stream to watch: the connection closing is the only sign the client went away.
        watch(connection, session);
        return new Reply.Later(sink.response);
    }

    /** Cancels {@code session} when the client's connection closes before it ends. */
    private static void watch(ClientConnection connection, CompletionSession session) {
        Runnable clientGone = session::clientGone;
        connection.whenClosed(clientGone);
        session.whenEnded(() -> connection.forget(clientGone));
    }

    /** Where generated text starts in OpenAI's offsets without echo: after the prompt's text. */
    private int echoedLength(CompletionRequest request, int[] promptTokens) {
        return (request.prompt() != null ? request.prompt() : tokenizer.decode(promptTokens)).length();
    }

    private int[] checkVocabulary(int[] tokens) {
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] >= model.vocabSize()) {
                throw new InvalidRequestException("prompt token " + i + " is " + tokens[i] + ", outside the vocabulary of "
                        + model.vocabSize() + " tokens", "prompt");
            }
        }
        return tokens;
    }

    private void checkContext(int promptTokens, int maxTokens) {
        long requested = (long) promptTokens + maxTokens;
        if (requested > model.contextLength()) {
            throw new InvalidRequestException("This model's maximum context length is " + model.contextLength()
                    + " tokens, however you requested " + requested + " tokens (" + promptTokens + " in your prompt; "
                    + maxTokens + " for the completion). Please reduce your prompt or max_tokens.", "max_tokens");
        }
    }

    /** Hands the job to the backend and arms its timeout; returns the refusal, or null once it is queued. */
    private JsonResponse submit(GenerationJob job, CompletionSession session) {
        metrics.admitting();
        try {
            backend.submit(job, session);
        } catch (IllegalArgumentException e) {
            metrics.notAdmitted(Outcome.INVALID);
            return error(400, "invalid_request_error", e.getMessage(), null, null);
        } catch (RejectedExecutionException e) {
            metrics.notAdmitted(Outcome.REJECTED);
            return backend.ready()
                    ? overloaded(e)
                    : error(503, "server_error", "The server is not ready: " + e.getMessage(), null, "not_ready");
        }
        metrics.admitted(job.promptTokens().length);
        session.whenEnded(inFlight::release);
        Cancellable timer = system.scheduler().scheduleOnce(requestTimeout,
                () -> session.timedOut("the request did not finish within " + requestTimeout.toMillis() / 1000.0
                        + " s (" + GatewaySettings.PATH + ".request-timeout)"),
                system.executionContext());
        session.whenEnded(timer::cancel);
        return null;
    }

    /** 429: the routes add Retry-After to it. */
    private static JsonResponse overloaded(RejectedExecutionException e) {
        return error(429, "server_overloaded", "The server is busy: " + e.getMessage(), null, "queue_full");
    }

    /** Completions admitted and not yet ended, for tests and /metrics' cross-checks. */
    int inFlight() {
        return inFlight.inFlight();
    }

    private static byte[] randomBytes() {
        byte[] bytes = new byte[12];
        ThreadLocalRandom.current().nextBytes(bytes);
        return bytes;
    }

    static JsonResponse error(int status, String type, String message, String param, String code) {
        return new JsonResponse(status, OpenAiJson.error(message, type, param, code));
    }
}
