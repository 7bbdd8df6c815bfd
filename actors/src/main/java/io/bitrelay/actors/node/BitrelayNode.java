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

    private BitrelayNode(ActorSystem<Void> system, DataPlane dataPlane, ClusterGenerationBackend backend,
                         ActorRef<Coordinator.Command> coordinator) {
        this.system = system;
        this.dataPlane = dataPlane;
        this.backend = backend;
        this.coordinator = coordinator;
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
        Config config = BitrelayConfig.load(settings, configFile);
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
        CompletableFuture<ActorRef<Coordinator.Command>> coordinatorRef = new CompletableFuture<>();
        WorkerSettings worker = workerSettings;
        DataPlane plane = dataPlane;
        Behavior<Void> guardian = Behaviors.setup(context -> {
            ActorRef<Coordinator.Command> proxy = ClusterSingleton.get(context.getSystem()).init(
                    SingletonActor.of(Behaviors.<Coordinator.Command>setup(c -> Coordinator.create(CoordinatorSettings.from(finalConfig))),
                                    Coordinator.SINGLETON_NAME)
                            .withSettings(ClusterSingletonSettings.create(context.getSystem()).withRole(Coordinator.ROLE)));
            coordinatorRef.complete(proxy);
            if (worker != null) {
                context.spawn(StageWorker.create(worker, plane), "stage-worker");
            }
            if (backend != null) {
                backend.attach(context.spawn(GatewayActor.create(proxy, status::set), "gateway"));
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
        return new BitrelayNode(system, dataPlane, backend, proxy);
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

    @Override
    public void close() {
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
