package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.FirstTokenTimes;
import io.bitrelay.actors.coordinator.StatsAggregator;
import io.bitrelay.actors.worker.StageStats;
import io.bitrelay.actors.worker.StepPhase;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BiConsumer;

/**
 * Per-link counters of the pipeline in the gateway's /metrics, read at scrape time from the latest
 * statistics the gateway collected from the stages.
 */
public final class LinkMetrics {
    private final AtomicReference<StatsAggregator.PipelineStats> latest = new AtomicReference<>();

    public LinkMetrics(PrometheusRegistry registry) {
        linkCounter(registry, "bitrelay_link_payload_bytes", "Activation payload bytes sent over each inter-stage link",
                (c, sink) -> sink.accept(c, (double) c.payloadBytes()));
        linkCounter(registry, "bitrelay_link_wire_bytes", "Whole-frame bytes (headers, layout, parameters, CRC) sent over each link",
                (c, sink) -> sink.accept(c, (double) c.wireBytes()));
        linkCounter(registry, "bitrelay_link_fp16_wire_bytes", "What the same frames would have cost with FP16 links",
                (c, sink) -> sink.accept(c, (double) c.fp16WireBytes()));
        linkCounter(registry, "bitrelay_link_tokens", "Tokens (activation rows) carried over each link",
                (c, sink) -> sink.accept(c, (double) c.tokens()));
        GaugeWithCallback.builder().name("bitrelay_link_compression_ratio")
                .help("FP16 wire bytes divided by actual wire bytes, per link")
                .labelNames("from", "to", "codec")
                .callback(callback -> forEachLink(c -> {
                    if (c.wireBytes() > 0) {
                        callback.call((double) c.fp16WireBytes() / c.wireBytes(), label(c.fromStage()), label(c.toStage()), c.codec());
                    }
                }))
                .register(registry);
        CounterWithCallback.builder().name("bitrelay_stage_rejected_frames")
                .help("Inbound frames a stage rejected (bad CRC, version, sizes) or dropped")
                .labelNames("stage")
                .callback(callback -> forEachStage(stage -> callback.call(stage.rejectedFrames(), label(stage.stageIndex()))))
                .register(registry);
        stepCounters(registry);
        firstTokenCounters(registry);
    }

    /** The coordinator's share of time to first token: {@code rate(seconds{part}) / rate(first_tokens)} is its mean. */
    private void firstTokenCounters(PrometheusRegistry registry) {
        CounterWithCallback.builder().name("bitrelay_first_tokens")
                .help("Requests whose first token reached the coordinator")
                .callback(callback -> withFirstTokens(times -> callback.call(times.requests())))
                .register(registry);
        CounterWithCallback.builder().name("bitrelay_first_token_seconds")
                .help("The coordinator's share of time to first token, summed over requests, by part: waiting (queued until"
                        + " the request joined a batch), first_step (joined until its first token came back)")
                .labelNames("part")
                .callback(callback -> withFirstTokens(times -> {
                    callback.call(times.waitingNanos() / 1e9, "waiting");
                    callback.call(times.firstStepNanos() / 1e9, "first_step");
                }))
                .register(registry);
    }

    private void withFirstTokens(java.util.function.Consumer<FirstTokenTimes> action) {
        StatsAggregator.PipelineStats stats = latest.get();
        if (stats != null && stats.firstTokens() != null) {
            action.accept(stats.firstTokens());
        }
    }

    /** Steps and where their time went, per stage: {@code rate(seconds) / rate(steps)} is a phase's time per step. */
    private void stepCounters(PrometheusRegistry registry) {
        CounterWithCallback.builder().name("bitrelay_stage_steps")
                .help("Micro-batches a stage computed")
                .labelNames("stage")
                .callback(callback -> forEachStage(stage -> callback.call(stage.steps(), label(stage.stageIndex()))))
                .register(registry);
        CounterWithCallback.builder().name("bitrelay_stage_step_seconds")
                .help("Host wall-clock time of a stage's steps by phase (queue, input, layers, head, sample, output); "
                        + "a GPU stage's device time lands in the first phase that waits for it")
                .labelNames("stage", "phase")
                .callback(callback -> forEachStage(stage -> {
                    for (StepPhase phase : StepPhase.values()) {
                        callback.call(stage.nanos(phase) / 1e9, label(stage.stageIndex()), phase.label());
                    }
                }))
                .register(registry);
    }

    private void forEachStage(java.util.function.Consumer<StageStats> action) {
        StatsAggregator.PipelineStats stats = latest.get();
        if (stats == null) {
            return;
        }
        for (StageStats stage : stats.stages()) {
            if (stage != null) {
                action.accept(stage);
            }
        }
    }

    public void update(StatsAggregator.PipelineStats stats) {
        latest.set(stats);
    }

    private void linkCounter(PrometheusRegistry registry, String name, String help,
                             BiConsumer<StageStats.LinkCounters, BiConsumer<StageStats.LinkCounters, Double>> value) {
        CounterWithCallback.builder().name(name).help(help).labelNames("from", "to", "codec")
                .callback(callback -> forEachLink(c -> value.accept(c, (link, v) ->
                        callback.call(v, label(link.fromStage()), label(link.toStage()), link.codec()))))
                .register(registry);
    }

    private void forEachLink(java.util.function.Consumer<StageStats.LinkCounters> action) {
        forEachStage(stage -> {
            if (stage.outbound() != null) {
                action.accept(stage.outbound());
            }
        });
    }

    private static String label(int stage) {
        return "stage" + stage;
    }
}
