package io.bitrelay.deploy.cluster;

import io.bitrelay.deploy.ModelOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/** A local cluster: the shared driver, the coordinator + gateway in this JVM, N worker JVMs; serves until stopped. */
@Command(name = "cluster", mixinStandardHelpOptions = true,
        description = "Start a local cluster (N worker JVMs + coordinator/gateway) and serve HTTP until stopped.")
public final class ClusterCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Mixin
    LocalClusterOptions clusterOptions;

    @Mixin
    io.bitrelay.deploy.cluster.QuantizationOptions quantizationOptions;

    @Option(names = "--http-port", defaultValue = "8080", description = "Gateway port (default: ${DEFAULT-VALUE}).")
    int httpPort;


    @Override
    public void run() {
        Path checkpoint = modelOptions.resolve();
        LocalCluster cluster;
        try {
            cluster = LocalCluster.start(clusterOptions.toOptions(checkpoint, httpPort,
                    quantizationOptions.settings(io.bitrelay.deploy.cluster.QuantizationOptions.defaultStore(checkpoint)), Duration.ofMinutes(30)), line -> System.err.println("bitrelay: " + line));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        // Ctrl-C: stop the workers and the driver before the JVM goes, so no worker outlives its cluster.
        Runtime.getRuntime().addShutdownHook(new Thread(cluster::close, "bitrelay-cluster-shutdown"));
        var address = cluster.httpAddress();
        System.out.println("serving " + checkpoint.getFileName() + " on http://" + address.getHostString() + ":"
                + address.getPort() + "/v1/completions with " + clusterOptions.workers + " workers and " + clusterOptions.linkCodec + " links; Ctrl-C stops");
        try {
            new CountDownLatch(1).await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
