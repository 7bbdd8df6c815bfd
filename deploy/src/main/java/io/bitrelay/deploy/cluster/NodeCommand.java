package io.bitrelay.deploy.cluster;

import io.bitrelay.actors.dataplane.AeronDataPlane;
import io.bitrelay.actors.dataplane.MediaDriverHost;
import io.bitrelay.actors.node.BitrelayNode;
import io.bitrelay.actors.node.NodeExit;
import io.bitrelay.actors.node.NodeOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/**
 * Starts one cluster node with the given roles and runs until the process is stopped, or until the cluster shuts the
 * node down: then it releases what it holds (actors, stage, Aeron client, an embedded driver's directory) and exits
 * with {@link NodeExit}'s code for the reason (75 when the cluster downed it), so a supervisor can restart it.
 */
@Command(name = "node", mixinStandardHelpOptions = true,
        description = "Start one cluster node (roles: coordinator, worker, gateway) and run until stopped.")
public final class NodeCommand implements Callable<Integer> {
    @Option(names = "--roles", split = ",", required = true, description = "coordinator, worker and/or gateway.")
    List<String> roles;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address other nodes reach this one at (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "25520", description = "Pekko remoting port; 0 = any free (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--seed", split = ",", description = "Seed nodes as host:port; none = this node starts the cluster.")
    List<String> seeds = List.of();

    @Option(names = "--worker-id", description = "Worker name in logs and reports (default: host:port).")
    String workerId;

    @Option(names = "--model", paramLabel = "DIR", description = "Checkpoint directory (coordinator and gateway nodes).")
    Path model;

    @Option(names = "--link-codec", description = "fp16 or int8 (coordinator).")
    String linkCodec;

    @Option(names = "--expected-workers", description = "Workers to wait for before placing layers (coordinator).")
    Integer expectedWorkers;

    @Option(names = "--device", description = "cpu or cuda:N (worker).")
    String device;

    @Option(names = "--http-port", description = "Gateway HTTP port.")
    Integer httpPort;

    @Option(names = "--config", paramLabel = "FILE", description = "HOCON file over the defaults (configs/bitrelay.conf).")
    Path configFile;

    @picocli.CommandLine.Mixin
    QuantizationOptions quantizationOptions;

    @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Any config key, e.g. --set bitrelay.dataplane.driver=external.")
    List<String> sets = List.of();

    @Override
    public Integer call() {
        Map<String, Object> settings = new HashMap<>(ConfigSets.parse(sets));
        if (model != null) {
            settings.put("bitrelay.coordinator.checkpoint-dir", model.toAbsolutePath().toString());
        }
        putIfSet(settings, "bitrelay.coordinator.link-codec", linkCodec);
        putIfSet(settings, "bitrelay.coordinator.expected-workers", expectedWorkers);
        putIfSet(settings, "bitrelay.worker.device", device);
        putIfSet(settings, "bitrelay.gateway.port", httpPort);
        settings.putAll(quantizationOptions.settings(null));
        NodeOptions options = new NodeOptions(new LinkedHashSet<>(roles), host, port, seeds,
                workerId != null ? workerId : host + ":" + port);
        BitrelayNode node = BitrelayNode.start(options, settings, configFile, worker -> AeronDataPlane.open(
                Path.of(worker.aeronDirectory()), MediaDriverHost.DriverMode.valueOf(worker.driverMode().toUpperCase(Locale.ROOT)),
                worker.publishTimeout(), worker.dataPlaneIdle()));
        System.out.println("node " + options.workerId() + " up at " + node.seedAddress() + " with roles " + roles
                + (node.httpAddress() != null ? ", gateway on http://" + node.httpAddress().getHostString() + ":" + node.httpAddress().getPort() : ""));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            node.close();
            stopped.countDown();
        }, "bitrelay-node-shutdown"));
        node.system().getWhenTerminated().thenRun(stopped::countDown);
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        // Here only when the actor system stopped by itself (after a signal the JVM is already exiting in the hook).
        node.close();
        int code = node.shutdownReason().map(NodeExit::codeFor).orElse(NodeExit.FAILED);
        System.out.println("node " + options.workerId() + " stopped (" + node.shutdownReason().map(Object::toString)
                .orElse("actor system terminated") + "): exit code " + code);
        return code;
    }

    private static void putIfSet(Map<String, Object> settings, String key, Object value) {
        if (value != null) {
            settings.put(key, value);
        }
    }
}
