package io.bitrelay.actors.node;

import com.typesafe.config.Config;
import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.coordinator.CoordinatorSettings;
import io.bitrelay.actors.gateway.ClusterGenerationBackend;
import io.bitrelay.actors.gateway.GatewayActor;
import io.bitrelay.actors.dataplane.DataPlane;
import io.bitrelay.actors.worker.StageWorker;
import io.bitrelay.actors.worker.WorkerSettings;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.typed.ClusterSingleton;
import org.apache.pekko.cluster.typed.ClusterSingletonSettings;
import org.apache.pekko.cluster.typed.SingletonActor;

import io.bitrelay.actors.gateway.GatewayHttpServer;
import io.bitrelay.actors.gateway.GatewayMetrics;
import io.bitrelay.actors.gateway.GatewaySettings;
import io.bitrelay.actors.gateway.LinkMetrics;
import io.bitrelay.actors.gateway.ServedModel;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;

/**
 * One cluster node: a Pekko actor system joined to the cluster, with the actors of its roles — a stage
 * worker owning this node's device, the coordinator singleton (on the oldest coordinator node), the gateway.
 */
public final class BitrelayNode implements AutoCloseable {
    public static final String SYSTEM_NAME = "bitrelay";

    private final ActorSystem<Void> system;
    private final DataPlane dataPlane;
    private final ClusterGenerationBackend backend;
    private final ActorRef<Coordinator.Command> coordinator;
    private final GatewayHttpServer http;
    /** {@link #END_REQUESTS_AFTER_KEY}; null on nodes without a gateway. */
    private final java.time.Duration endRequestsAfter;
    private boolean closed;

    private BitrelayNode(ActorSystem<Void> system, DataPlane dataPlane, ClusterGenerationBackend backend,
                         ActorRef<Coordinator.Command> coordinator, GatewayHttpServer http, java.time.Duration endRequestsAfter) {
        this.endRequestsAfter = endRequestsAfter;
        this.system = system;
        this.dataPlane = dataPlane;
        this.backend = backend;
        this.coordinator = coordinator;
        this.http = http;
    }

    /**
     * @param dataPlaneFactory opens this host's data plane from the worker settings (only for worker nodes)
     */
    public static BitrelayNode start(NodeOptions options, Map<String, Object> overrides, java.nio.file.Path configFile,
                                     Function<WorkerSettings, DataPlane> dataPlaneFactory) {
        Map<String, Object> settings = new HashMap<>(overrides);
        settings.put("pekko.remote.artery.canonical.hostname", options.host());
        settings.put("pekko.remote.artery.canonical.port", options.port());
        settings.put("pekko.cluster.roles", List.copyOf(options.roles()));
        List<String> seeds = new ArrayList<>();
        for (String seed : options.seeds()) {
            seeds.add("pekko://" + SYSTEM_NAME + "@" + seed);
        }
        // mutual TLS switched on here, not in BitrelayConfig: settings readers need no key stores
        Config config = ClusterTls.apply(BitrelayConfig.load(settings, configFile));
        if (seeds.isEmpty()) {
            // The first node seeds the cluster with itself; its actual port is known only once bound.
            config = config.withValue("pekko.cluster.seed-nodes", com.typesafe.config.ConfigValueFactory.fromIterable(List.of()));
        } else {
            config = config.withValue("pekko.cluster.seed-nodes", com.typesafe.config.ConfigValueFactory.fromIterable(seeds));
        }
        Config finalConfig = config;
        DataPlane dataPlane = null;
        WorkerSettings workerSettings = null;
        if (options.has(StageWorker.ROLE)) {
            workerSettings = WorkerSettings.from(finalConfig, options.workerId(), options.host());
            dataPlane = dataPlaneFactory.apply(workerSettings);
        }
        AtomicReference<Coordinator.Status> status = new AtomicReference<>();
        ClusterGenerationBackend backend = options.has("gateway") ? new ClusterGenerationBackend(status) : null;
        PrometheusRegistry registry = new PrometheusRegistry();
        LinkMetrics linkMetrics = backend != null ? new LinkMetrics(registry) : null;
        CompletableFuture<ActorRef<Coordinator.Command>> coordinatorRef = new CompletableFuture<>();
        CompletableFuture<ActorRef<StageWorker.Command>> workerRef = new CompletableFuture<>();
        WorkerSettings worker = workerSettings;
        DataPlane plane = dataPlane;
        Behavior<Void> guardian = Behaviors.setup(context -> {
            ActorRef<Coordinator.Command> proxy = ClusterSingleton.get(context.getSystem()).init(
                    SingletonActor.of(Behaviors.<Coordinator.Command>setup(c -> Coordinator.create(CoordinatorSettings.from(finalConfig))),
                                    Coordinator.SINGLETON_NAME)
                            .withSettings(ClusterSingletonSettings.create(context.getSystem()).withRole(Coordinator.ROLE)));
            coordinatorRef.complete(proxy);
            if (options.has(Coordinator.ROLE)) {
                // on every coordinator node, not in the singleton: the singleton's node may be the one lost
                context.spawn(io.bitrelay.actors.coordinator.NodeDowning.create(
                        finalConfig.getDuration(io.bitrelay.actors.coordinator.NodeDowning.DOWN_AFTER_KEY)), "node-downing");
            }
            if (worker != null) {
                workerRef.complete(context.spawn(StageWorker.create(worker, plane), "stage-worker"));
                java.time.Duration orphanTimeout = finalConfig.getDuration(OrphanWatch.TIMEOUT_KEY);
                if (!options.has(Coordinator.ROLE) && !orphanTimeout.isZero()) {
                    context.spawn(OrphanWatch.create(orphanTimeout), "orphan-watch");
                }
            }
            if (backend != null) {
                backend.attach(context.spawn(GatewayActor.create(proxy, status::set, linkMetrics::update), "gateway"));
            }
            return Behaviors.empty();
        });
        ActorSystem<Void> system;
        try {
            system = ActorSystem.create(guardian, SYSTEM_NAME, finalConfig);
        } catch (RuntimeException e) {
            if (dataPlane != null) {
                dataPlane.close();
            }
            throw e;
        }
        if (options.seeds().isEmpty()) {
            org.apache.pekko.cluster.typed.Cluster cluster = org.apache.pekko.cluster.typed.Cluster.get(system);
            cluster.manager().tell(org.apache.pekko.cluster.typed.Join.create(cluster.selfMember().address()));
        }
        ActorRef<Coordinator.Command> proxy = coordinatorRef.orTimeout(30, TimeUnit.SECONDS).join();
        if (worker != null) {
            StageDrain.register(system, proxy, workerRef.orTimeout(30, TimeUnit.SECONDS).join(), options.workerId(),
                    finalConfig.getDuration("bitrelay.worker.drain-timeout"));
        }
        GatewayHttpServer http = null;
        if (backend != null) {
            try {
                http = startHttp(system, finalConfig, backend, registry);
            } catch (RuntimeException e) {
                system.terminate();
                if (dataPlane != null) {
                    dataPlane.close();
                }
                throw e;
            }
        }
        java.time.Duration endRequestsAfter = backend == null ? null : finalConfig.getDuration(END_REQUESTS_AFTER_KEY);
        if (backend != null) {
            // Pekko's own JVM hook may stop the actor system before close() runs on SIGTERM: the open requests end
            // in the first phase of its coordinated shutdown, while the gateway actor still runs
            org.apache.pekko.actor.CoordinatedShutdown.get(system).addTask(
                    org.apache.pekko.actor.CoordinatedShutdown.PhaseBeforeServiceUnbind(), "end-open-requests",
                    () -> backend.endJobs(system, endRequestsAfter).thenApply(ended -> org.apache.pekko.Done.getInstance()));
        }
        return new BitrelayNode(system, dataPlane, backend, proxy, http, endRequestsAfter);
    }

    /**
     * On shutdown, how long open requests may run before they end with an error their clients see (an error event and
     * [DONE] for a stream), ahead of bitrelay.gateway.shutdown-timeout closing their connections.
     */
    public static final String END_REQUESTS_AFTER_KEY = "bitrelay.gateway.end-requests-after";

    /** The gateway reads the checkpoint's tokenizer.json and config.json (its context length) itself. */
    private static GatewayHttpServer startHttp(ActorSystem<Void> system, Config config, ClusterGenerationBackend backend,
                                               PrometheusRegistry registry) {
        String checkpoint = config.getString("bitrelay.coordinator.checkpoint-dir");
        if (checkpoint.isBlank()) {
            throw new IllegalArgumentException("a gateway node needs bitrelay.coordinator.checkpoint-dir (--model) for the tokenizer");
        }
        Path directory = Path.of(checkpoint);
        OptConfig model = OptConfig.read(directory.resolve("config.json"));
        String name = config.getString("bitrelay.gateway.model-name");
        ServedModel served = ServedModel.of(name.isBlank() ? directory.getFileName().toString() : name, model);
        GatewayMetrics metrics = new GatewayMetrics(registry, backend::queueDepth, backend::runningSequences);
        GatewayHttpServer server = new GatewayHttpServer(system, backend, OptTokenizer.load(directory), served, metrics,
                GatewaySettings.fromConfig(config));
        server.bind();
        return server;
    }

    /** The gateway's bound address, or null on nodes without the gateway role. */
    public InetSocketAddress httpAddress() {
        return http == null ? null : http.address();
    }

    public ActorSystem<Void> system() {
        return system;
    }

    /** The gateway's backend (gateway nodes only). */
    public ClusterGenerationBackend backend() {
        return backend;
    }

    public ActorRef<Coordinator.Command> coordinator() {
        return coordinator;
    }

    /** This node's Pekko address as host:port, for other nodes' seed lists. */
    public String seedAddress() {
        var address = org.apache.pekko.cluster.typed.Cluster.get(system).selfMember().address();
        return address.getHost().get() + ":" + address.getPort().get();
    }

    /**
     * Why the actor system shut down (coordinated shutdown's reason), once it has: downed by the
     * cluster, or stopped by the JVM's shutdown. Empty while it runs.
     */
    public java.util.Optional<org.apache.pekko.actor.CoordinatedShutdown.Reason> shutdownReason() {
        return org.apache.pekko.actor.CoordinatedShutdown.get(system).getShutdownReason();
    }

    /** Before the HTTP server closes: open requests end with an error their clients see (once, whoever asks first). */
    private void endOpenRequests() {
        if (backend == null) {
            return;
        }
        try {
            backend.endJobs(system, endRequestsAfter).toCompletableFuture()
                    .get(endRequestsAfter.toMillis() + 10_000, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            // the actor system may be down already (Pekko's JVM hook ran first, and ended them then)
            system.log().debug("ending the open requests: {}", e.toString());
        }
    }

    /** Idempotent: a JVM shutdown hook and a node the cluster shut down may both close it. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        endOpenRequests();
        try {
            if (http != null) {
                http.close();
            }
        } catch (RuntimeException e) {
            // A JVM shutdown may have stopped the actor system under the gateway already; the rest must still go.
            system.log().warn("closing the gateway: {}", e.getMessage());
        }
        system.terminate();
        try {
            system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            // Terminating anyway: the data plane below must still be released.
        }
        if (dataPlane != null) {
            dataPlane.close();
        }
    }
}
