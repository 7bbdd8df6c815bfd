package io.bitrelay.deploy.bench;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.deploy.ModelOptions;
import io.bitrelay.deploy.cluster.LocalCluster;
import io.bitrelay.deploy.cluster.LocalClusterOptions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * Worker failover under steady load (issue 15): a local cluster of stage workers and standbys, closed-loop greedy
 * clients, and a SIGKILL of the worker at each stage position in turn. Each kill waits for the previous one's worker
 * to be restarted and back as a standby, then for a steady window; the table gives, per position, how long the
 * coordinator took to notice and to serve again (a standby takes the stage, sequences replay their prefix), the
 * tokens/s of the window after the kill against the window before it, and the requests that failed.
 */
@Command(name = "chaos", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Kill -9 the worker at the first, middle and last stage in turn under steady load: detection, "
                + "recovery, tokens/s dip and requests lost per stage position.")
public final class ChaosBench implements Runnable {
    /** How often the coordinator's status is read around a kill; the resolution of the detection and recovery times. */
    private static final Duration POLL = Duration.ofMillis(20);
    private static final String NO_KV_REPLICAS =
            "recovery from KV replicas: not built (stages do not stream their KV appends to a replica), every recovery replays";

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    LocalClusterOptions clusterOptions;

    @Option(names = "--standbys", defaultValue = "1",
            description = "Worker JVMs beyond --workers, holding no stage until one is lost (default: ${DEFAULT-VALUE}).")
    int standbys;

    @Option(names = "--positions", split = ",", defaultValue = "first,middle,last",
            description = "Stage positions to kill the worker of, in order (default: ${DEFAULT-VALUE}).")
    List<String> positions;

    @Option(names = "--clients", defaultValue = "8",
            description = "Closed-loop clients, each sending its next completion when the previous ends (default: ${DEFAULT-VALUE}).")
    int clients;

    @Option(names = "--prompt-tokens", defaultValue = "32", description = "Token ids per prompt, BOS included (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--max-tokens", defaultValue = "32",
            description = "Tokens per completion; EOS is ignored, so each yields exactly this many (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--window", defaultValue = "PT10S",
            description = "Steady load before each kill, and the window after it the dip is measured over (default: ${DEFAULT-VALUE}).")
    Duration window;

    @Option(names = "--rejoin-timeout", defaultValue = "PT2M",
            description = "Longest wait for the pipeline to serve again and the killed worker to be back as a standby (default: ${DEFAULT-VALUE}).")
    Duration rejoinTimeout;

    @Option(names = "--start-timeout", defaultValue = "PT10M", description = "Longest wait for the cluster to serve (default: ${DEFAULT-VALUE}).")
    Duration startTimeout;

    @Option(names = "--handover", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Also kill the coordinator singleton's node last: it runs in a coordinator + gateway JVM of its own,"
                    + " the bench's JVM is the second such node (its gateway carries the load) and takes over (default: on).")
    boolean handover;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write every setting and result as JSON.")
    Path json;

    /** One kill as it happened (System.nanoTime); turned into a row once the next round's start is known. */
    private record Round(StagePosition position, int stage, String victim, String replacement, long start, long killed,
                         long detected, long recovered, long steadyAgain, long replayed) {
    }

    @Override
    public void run() {
        List<StagePosition> order = validate();
        Consumer<String> progress = line -> System.err.println("bitrelay: " + line);
        Path checkpoint = modelOptions.resolve();
        List<int[]> prompts = BenchPrompts.of(checkpoint, clients, promptTokens);
        LocalCluster.Options options = clusterOptions.toOptions(checkpoint, 0, Map.of(), startTimeout);
        if (handover) {
            options = options.withLeadCoordinator();
        }
        HandOverRound handOver = null;
        TokenTimeline timeline = new TokenTimeline();
        List<Round> rounds = new ArrayList<>();
        String stoppedEarly = null;
        long end;
        try (LocalCluster cluster = LocalCluster.start(options, progress)) {
            try (ClusterShutdownHook _ = new ClusterShutdownHook(cluster, "bitrelay-chaos-bench-shutdown")) {
                for (int i = 0; i < standbys; i++) {
                    cluster.addWorker(progress);
                }
                int total = clusterOptions.workers + standbys;
                awaitStatus(cluster, s -> s.serving() && s.workers() == total, total + " workers joined, the pipeline serving");
                ChaosLoad load = new ChaosLoad(cluster.node().backend(), prompts, clients, maxTokens, timeline);
                load.start();
                progress.accept("warm-up: " + clients + " clients for " + window.toSeconds() + " s");
                sleep(window);
                for (StagePosition position : order) {
                    int stages = awaitStatus(cluster, s -> s.serving() && s.workers() == total,
                            "every worker back (the killed one as a standby)").stages().length;
                    if (stages != clusterOptions.workers) {
                        // A loss the bench did not cause (a false alarm on a starved host) left fewer stages, and a
                        // pipeline is not spread out again while it serves: the positions would not be comparable.
                        stoppedEarly = "after " + rounds.size() + " kill(s): the pipeline has " + stages + " stages, not "
                                + clusterOptions.workers + ", after a loss the bench did not cause (a worker marked unreachable"
                                + " on a loaded host?); see the log above";
                        progress.accept("stopping " + stoppedEarly);
                        break;
                    }
                    rounds.add(killUnderLoad(cluster, position, timeline, progress));
                }
                if (handover && stoppedEarly == null) {
                    awaitStatus(cluster, s -> s.serving() && s.workers() == total, "every worker back (the killed one as a standby)");
                    handOver = handOverUnderLoad(cluster, timeline, progress);
                }
                // Every round ends with its killed worker back (the next one waits for it), the last one too.
                awaitStatus(cluster, s -> s.serving() && s.workers() == total, "every worker back (the killed one as a standby)");
                progress.accept("stopping the load; " + load.completed() + " completions");
                if (!load.stop(rejoinTimeout)) {
                    progress.accept("some requests were still running " + rejoinTimeout.toSeconds() + " s after the load stopped");
                }
                end = System.nanoTime();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
        List<String> notBuilt = new ArrayList<>(List.of(NO_KV_REPLICAS));
        if (!handover) {
            notBuilt.add("coordinator hand-over: not run (--no-handover)");
        } else if (handOver == null) {
            notBuilt.add("coordinator hand-over: not run (the run stopped early)");
        }
        // the last worker round's failures are counted up to the hand-over's steady window, which counts its own
        long roundsEnd = handOver == null ? end + 1 : handOver.start();
        ChaosBenchResult result = new ChaosBenchResult(settings(checkpoint), rows(rounds, timeline, roundsEnd),
                handOver == null ? null : handOverRow(handOver, timeline, end), notBuilt, stoppedEarly);
        System.out.println();
        result.print(System.out);
        if (json != null) {
            result.writeJson(json);
            System.out.println("\nwrote " + json);
        }
        if (stoppedEarly != null) {
            throw new IllegalStateException("stopped early (results so far above) " + stoppedEarly);
        }
    }

    private List<StagePosition> validate() {
        if (clusterOptions.workers < 3) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--workers must be >= 3 so that the first, middle and last stages are different workers, got " + clusterOptions.workers);
        }
        if (standbys < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--standbys must be >= 1 (the lost stage goes to a standby), got " + standbys);
        }
        if (clients < 1 || maxTokens < 1 || promptTokens < 2) {
            throw new CommandLine.ParameterException(spec.commandLine(), "need --clients >= 1, --max-tokens >= 1 and --prompt-tokens >= 2, got "
                    + clients + ", " + maxTokens + ", " + promptTokens);
        }
        if (window.isNegative() || window.isZero()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--window must be positive, got " + window);
        }
        if (positions.isEmpty()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--positions names no stage position");
        }
        try {
            return positions.stream().map(StagePosition::parse).toList();
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--positions: " + e.getMessage());
        }
    }

    /** A steady window, then the worker at {@code position} killed and the recovery timed (every worker is back). */
    private Round killUnderLoad(LocalCluster cluster, StagePosition position, TokenTimeline timeline,
                                Consumer<String> progress) throws InterruptedException {
        long start = System.nanoTime();
        progress.accept("steady load for " + window.toSeconds() + " s before killing the " + position.label() + " stage's worker");
        sleep(window);
        Coordinator.Status before = awaitStatus(cluster, Coordinator.Status::serving, "the pipeline serving");
        int stage = position.stageOf(before.stages().length);
        String victim = before.stages()[stage].workerId();
        long killed = System.nanoTime();
        cluster.killWorker(victim);
        awaitStatus(cluster, s -> !s.serving(), "the coordinator noticed " + victim + " is gone");
        long detected = System.nanoTime();
        Coordinator.Status after = awaitStatus(cluster, Coordinator.Status::serving, "the pipeline serving again");
        long recovered = System.nanoTime();
        long rest = killed + window.toNanos() - System.nanoTime();
        if (rest > 0) {
            Thread.sleep(rest / 1_000_000);
        }
        long steadyAgain = awaitSteadyRate(timeline, recovered, timeline.rate(killed - window.toNanos(), killed), progress);
        String replacement = after.stages().length > stage ? after.stages()[stage].workerId() : "-";
        progress.accept(String.format("killed %s (%s stage %d): detected after %d ms, serving again over %s after %d ms",
                victim, position.label(), stage, (detected - killed) / 1_000_000, replacement, (recovered - killed) / 1_000_000));
        return new Round(position, stage, victim, replacement, start, killed, detected, recovered, steadyAgain,
                after.replayed() - before.replayed());
    }

    /** The coordinator's hand-over as it happened (System.nanoTime). */
    private record HandOverRound(String tookOver, long start, long killed, long handedOver, long recovered, long steadyAgain,
                                 long resumed) {
    }

    /**
     * A steady window, then the JVM holding the coordinator singleton killed; timed until a coordinator of a new
     * incarnation answers, serves, and the rate is back.
     */
    private HandOverRound handOverUnderLoad(LocalCluster cluster, TokenTimeline timeline, Consumer<String> progress)
            throws InterruptedException {
        long start = System.nanoTime();
        progress.accept("steady load for " + window.toSeconds() + " s before killing the coordinator singleton's node");
        sleep(window);
        Coordinator.Status before = awaitStatus(cluster, Coordinator.Status::serving, "the pipeline serving");
        if (!before.node().equals(cluster.leadCoordinatorAddress())) {
            throw new IllegalStateException("the coordinator runs on " + before.node() + ", not in the lead coordinator JVM ("
                    + cluster.leadCoordinatorAddress() + "): a false alarm moved it before the kill; see the log above");
        }
        long killed = System.nanoTime();
        int exit = cluster.killCoordinator();
        Coordinator.Status moved = awaitStatus(cluster, s -> !s.incarnation().equals(before.incarnation()),
                "a coordinator of a new incarnation answering");
        long handedOver = System.nanoTime();
        Coordinator.Status after = awaitStatus(cluster, s -> !s.incarnation().equals(before.incarnation()) && s.serving(),
                "the new coordinator serving");
        long recovered = System.nanoTime();
        long rest = killed + window.toNanos() - System.nanoTime();
        if (rest > 0) {
            Thread.sleep(rest / 1_000_000);
        }
        long steadyAgain = awaitSteadyRate(timeline, recovered, timeline.rate(killed - window.toNanos(), killed), progress);
        Coordinator.Status last = awaitStatus(cluster, Coordinator.Status::serving, "the new coordinator serving");
        progress.accept(String.format("killed the coordinator's JVM (exit %d): a new coordinator on %s answered after %d ms"
                + " (%s), served after %d ms", exit, moved.node(), (handedOver - killed) / 1_000_000, moved.phase().label(),
                (recovered - killed) / 1_000_000));
        return new HandOverRound(after.node(), start, killed, handedOver, recovered, steadyAgain, last.resumed());
    }

    private ChaosBenchResult.HandOver handOverRow(HandOverRound round, TokenTimeline timeline, long end) {
        List<TokenTimeline.Failure> failures = timeline.failuresBetween(round.start(), end + 1);
        long firstToken = timeline.firstTokenFrom(round.recovered());
        return new ChaosBenchResult.HandOver("coordinator-1", round.tookOver(), window.toMillis() / 1000.0,
                millis(round.killed(), round.handedOver()), millis(round.killed(), round.recovered()),
                firstToken < 0 ? -1 : millis(round.killed(), firstToken),
                round.steadyAgain() < 0 ? -1 : millis(round.killed(), round.steadyAgain()),
                timeline.rate(round.killed() - window.toNanos(), round.killed()),
                timeline.rate(round.killed(), round.killed() + window.toNanos()), round.resumed(), failures.size(),
                failures.stream().map(TokenTimeline.Failure::reason).distinct().toList());
    }

    /**
     * Waits for the first {@link ChaosBenchResult#STEADY_SPAN_SECONDS} s window after {@code recovered} with at least
     * {@link ChaosBenchResult#STEADY_SHARE} of the steady rate, at most --rejoin-timeout, so that the next round's
     * steady window does not measure this recovery. Returns the window's end (its start may precede the first token
     * of a burst that fills it), or −1.
     */
    private long awaitSteadyRate(TokenTimeline timeline, long recovered, double steadyRate, Consumer<String> progress)
            throws InterruptedException {
        long span = ChaosBenchResult.STEADY_SPAN_SECONDS * 1_000_000_000L;
        long deadline = System.nanoTime() + rejoinTimeout.toNanos();
        while (System.nanoTime() < deadline) {
            long found = timeline.firstWindowAtRate(recovered, System.nanoTime(), span, ChaosBenchResult.STEADY_SHARE * steadyRate);
            if (found >= 0) {
                return found + span;
            }
            Thread.sleep(100);
        }
        progress.accept(String.format("the rate did not get back to %.0f%% of %.1f tokens/s within %s (--rejoin-timeout)",
                ChaosBenchResult.STEADY_SHARE * 100, steadyRate, rejoinTimeout));
        return -1;
    }

    /** @param end where the last round's failures stop counting */
    private List<ChaosBenchResult.Kill> rows(List<Round> rounds, TokenTimeline timeline, long end) {
        List<ChaosBenchResult.Kill> kills = new ArrayList<>();
        for (int i = 0; i < rounds.size(); i++) {
            Round round = rounds.get(i);
            long until = i + 1 < rounds.size() ? rounds.get(i + 1).start() : end;
            List<TokenTimeline.Failure> failures = timeline.failuresBetween(round.start(), until);
            long firstToken = timeline.firstTokenFrom(round.recovered());
            double steadyRate = timeline.rate(round.killed() - window.toNanos(), round.killed());
            long steadyAgain = round.steadyAgain();
            kills.add(new ChaosBenchResult.Kill(round.position(), round.stage(), round.victim(), round.replacement(),
                    window.toMillis() / 1000.0, millis(round.killed(), round.detected()), millis(round.killed(), round.recovered()),
                    firstToken < 0 ? -1 : millis(round.killed(), firstToken),
                    steadyAgain < 0 ? -1 : millis(round.killed(), steadyAgain), steadyRate,
                    timeline.rate(round.killed(), round.killed() + window.toNanos()), round.replayed(), failures.size(),
                    failures.stream().map(TokenTimeline.Failure::reason).distinct().toList()));
        }
        return kills;
    }

    /** The first status that passes {@code condition}, read every {@link #POLL}; fails after --rejoin-timeout. */
    private Coordinator.Status awaitStatus(LocalCluster cluster, Predicate<Coordinator.Status> condition, String what)
            throws InterruptedException {
        long deadline = System.nanoTime() + rejoinTimeout.toNanos();
        while (System.nanoTime() < deadline) {
            Coordinator.Status status = cluster.status();
            if (status != null && condition.test(status)) {
                return status;
            }
            Thread.sleep(POLL.toMillis());
        }
        throw new IllegalStateException("not within " + rejoinTimeout + " (--rejoin-timeout): " + what);
    }

    private Map<String, Object> settings(Path checkpoint) {
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("checkpoint", checkpoint.toAbsolutePath().toString());
        settings.put("preset", modelOptions.preset());
        settings.put("layers", modelOptions.layers());
        settings.put("workers", clusterOptions.workers);
        settings.put("standbys", standbys);
        settings.put("devices", String.join(",", clusterOptions.devices));
        settings.put("linkCodec", clusterOptions.linkCodec);
        settings.put("sets", clusterOptions.sets);
        settings.put("positions", positions);
        settings.put("clients", clients);
        settings.put("promptTokens", promptTokens);
        settings.put("maxTokens", maxTokens);
        settings.put("windowSeconds", window.toMillis() / 1000.0);
        settings.put("handover", handover);
        settings.put("cores", Runtime.getRuntime().availableProcessors());
        settings.put("java", Runtime.version().toString());
        return settings;
    }

    private static long millis(long fromNanos, long toNanos) {
        return (toNanos - fromNanos) / 1_000_000;
    }

    private static void sleep(Duration duration) throws InterruptedException {
        Thread.sleep(duration.toMillis());
    }
}
