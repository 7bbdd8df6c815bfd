package io.bitrelay.actors.gateway;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Locale;
import java.util.function.IntSupplier;

/**
 * The gateway's Prometheus metrics, registered in a {@link PrometheusRegistry} the caller may share:
 * anything else registered there (per-link byte counters, compression ratios from the cluster) is served
 * on the same {@code /metrics}.
 *
 * <ul>
 *   <li>{@code bitrelay_gateway_requests_total{outcome}}: completion requests by {@link Outcome}</li>
 *   <li>{@code bitrelay_gateway_prompt_tokens_total}, {@code bitrelay_gateway_completion_tokens_total}:
 *       tokens in admitted prompts and tokens generated; {@code rate(...[1m])} is tokens/s</li>
 *   <li>{@code bitrelay_gateway_requests_in_flight}: admitted completions not yet answered</li>
 *   <li>{@code bitrelay_gateway_queue_depth}: jobs waiting in the backend for admission</li>
 *   <li>{@code bitrelay_gateway_request_duration_seconds}: arrival to last byte of admitted requests</li>
 *   <li>{@code bitrelay_gateway_time_to_first_token_seconds}: arrival to first generated token</li>
 * </ul>
 */
public final class GatewayMetrics {
    /** Latency buckets from a cached short answer to a long generation on a big model. */
    private static final double[] SECONDS_BUCKETS = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};

    /** How a completion request ended, the {@code outcome} label. */
    public enum Outcome {
        /** Answered: EOS, max tokens or a stop string. */
        OK,
        /** 400/404 before anything was queued. */
        INVALID,
        /** 401: a /v1/ request without an API key or with a wrong one (bitrelay.gateway.api-keys-*). */
        UNAUTHORIZED,
        /** 429/503: the backend refused it (queue full, not ready), or no pipeline served it in time (503). */
        REJECTED,
        /** The backend failed it (500 or an error event in the stream). */
        FAILED,
        /** The client went away before the end. */
        CANCELLED,
        /** The request did not finish within the gateway's request timeout. */
        TIMEOUT;

        String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private final PrometheusRegistry registry;
    private final Counter requests;
    private final Counter promptTokens;
    private final Counter completionTokens;
    private final Gauge inFlight;
    private final Histogram duration;
    private final Histogram timeToFirstToken;
    private final PrometheusTextFormatWriter textFormat = PrometheusTextFormatWriter.create();

    /**
     * Registers the gateway's metrics; a registry holds one GatewayMetrics (the names would clash).
     *
     * @param registry   where the metrics go; pass your own to add more
     * @param queueDepth read at each scrape, usually {@link GenerationBackend#queueDepth()}
     */
    public GatewayMetrics(PrometheusRegistry registry, IntSupplier queueDepth) {
        this(registry, queueDepth, null);
    }

    /**
     * @param runningSequences read at each scrape: sequences the backend runs (a cluster's coordinator holds KV caches
     *                         for), so a scraper can tell that nothing runs for clients that are gone; null for none
     */
    public GatewayMetrics(PrometheusRegistry registry, IntSupplier queueDepth, IntSupplier runningSequences) {
        this.registry = registry;
        if (runningSequences != null) {
            GaugeWithCallback.builder().name("bitrelay_gateway_backend_running_sequences")
                    .help("Sequences the backend runs now (in a cluster: the coordinator's, as of its last status, every 0.5 s)")
                    .callback(callback -> callback.call(runningSequences.getAsInt())).register(registry);
        }
        this.requests = Counter.builder().name("bitrelay_gateway_requests")
                .help("Completion requests by outcome").labelNames("outcome").register(registry);
        for (Outcome outcome : Outcome.values()) {
            requests.labelValues(outcome.label()); // every outcome shows up as 0 before it first happens
        }
        this.promptTokens = Counter.builder().name("bitrelay_gateway_prompt_tokens")
                .help("Prompt tokens of admitted completion requests").register(registry);
        this.completionTokens = Counter.builder().name("bitrelay_gateway_completion_tokens")
                .help("Tokens generated for completion requests").register(registry);
        this.inFlight = Gauge.builder().name("bitrelay_gateway_requests_in_flight")
                .help("Admitted completion requests not yet answered").register(registry);
        GaugeWithCallback.builder().name("bitrelay_gateway_queue_depth")
                .help("Jobs waiting in the backend for admission")
                .callback(callback -> callback.call(queueDepth.getAsInt())).register(registry);
        this.duration = Histogram.builder().name("bitrelay_gateway_request_duration_seconds")
                .help("Time from arrival to the end of the response of admitted completion requests")
                .classicOnly().classicUpperBounds(SECONDS_BUCKETS).register(registry);
        this.timeToFirstToken = Histogram.builder().name("bitrelay_gateway_time_to_first_token_seconds")
                .help("Time from arrival to the first generated token")
                .classicOnly().classicUpperBounds(SECONDS_BUCKETS).register(registry);
    }

    public PrometheusRegistry registry() {
        return registry;
    }

    /** A request refused before it reached the backend. */
    void refused(Outcome outcome) {
        requests.labelValues(outcome.label()).inc();
    }

    /** A request is about to be handed to the backend; it counts as in flight from here. */
    void admitting() {
        inFlight.inc();
    }

    /** The backend refused the request {@link #admitting()} announced. */
    void notAdmitted(Outcome outcome) {
        inFlight.dec();
        requests.labelValues(outcome.label()).inc();
    }

    /** The backend queued the request. */
    void admitted(int promptTokenCount) {
        promptTokens.inc(promptTokenCount);
    }

    void tokenGenerated() {
        completionTokens.inc();
    }

    void firstToken(long sinceArrivalNanos) {
        timeToFirstToken.observe(sinceArrivalNanos / 1e9);
    }

    /** An admitted request ended. */
    void ended(Outcome outcome, long sinceArrivalNanos) {
        inFlight.dec();
        requests.labelValues(outcome.label()).inc();
        duration.observe(sinceArrivalNanos / 1e9);
    }

    /** Everything in the registry in Prometheus' text format 0.0.4. */
    public byte[] scrapeText() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
        try {
            textFormat.write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    public String textContentType() {
        return textFormat.getContentType();
    }
}
