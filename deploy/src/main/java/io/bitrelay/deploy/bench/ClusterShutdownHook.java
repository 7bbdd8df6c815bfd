package io.bitrelay.deploy.bench;

import io.bitrelay.deploy.cluster.LocalCluster;

/**
 * Closes a bench's local cluster if the JVM is stopped (Ctrl-C, SIGTERM) while the bench runs, so that no worker JVM
 * or Aeron directory outlives it; closing this removes the hook once the bench closes the cluster itself.
 */
final class ClusterShutdownHook implements AutoCloseable {
    private final Thread hook;

    ClusterShutdownHook(LocalCluster cluster, String name) {
        this.hook = new Thread(cluster::close, name);
        Runtime.getRuntime().addShutdownHook(hook);
    }

    @Override
    public void close() {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running or has run: it closes the cluster
        }
    }
}
