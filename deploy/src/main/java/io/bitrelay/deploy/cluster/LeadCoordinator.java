package io.bitrelay.deploy.cluster;

import io.bitrelay.deploy.security.ThrowawayTls;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A coordinator + gateway node in a JVM of its own that seeds a local cluster, so that it is the oldest coordinator
 * node and holds the coordinator singleton, and the local cluster's own coordinator + gateway node is the second one:
 * killing this JVM (kill -9) hands the singleton over to that node (docs/failover.md, "Coordinator hand-over"). It
 * runs no worker and so no Aeron client or driver: it leaves no Aeron files behind whichever way it ends.
 */
final class LeadCoordinator implements AutoCloseable {
    static final String ID = "coordinator-1";

    private final Process process;
    private final String seed;

    private LeadCoordinator(Process process, String seed) {
        this.process = process;
        this.seed = seed;
    }

    /** Starts the JVM on a free port of 127.0.0.1 with the same settings as the local cluster's node; returns at once. */
    static LeadCoordinator start(Map<String, Object> settings, Path log, ThrowawayTls tls) throws IOException {
        int port;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort(); // free now; the JVM binds it a moment later
        }
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElse("java"));
        for (String argument : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (argument.startsWith("--add-") || argument.startsWith("--enable-native-access")) {
                command.add(argument);
            }
        }
        command.add("-Xmx1g");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add("io.bitrelay.deploy.BitrelayCli");
        command.add("node");
        command.add("--roles=coordinator,gateway");
        command.add("--host=127.0.0.1");
        command.add("--port=" + port);
        command.add("--worker-id=" + ID);
        for (Map.Entry<String, Object> entry : settings.entrySet()) {
            command.add("--set=" + entry.getKey() + "=" + entry.getValue());
        }
        command.add("--set=bitrelay.gateway.port=0"); // its gateway serves nobody in a local cluster: any free port
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.to(log.toFile()));
        if (tls != null) {
            tls.export(builder.environment());
        }
        return new LeadCoordinator(builder.start(), "127.0.0.1:" + port);
    }

    /** Its Pekko address as host:port: the seed of the local cluster's node. */
    String seed() {
        return seed;
    }

    boolean alive() {
        return process.isAlive();
    }

    /** kill -9; returns once the JVM is gone, with its exit code (137). */
    int kill() {
        process.destroyForcibly();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                throw new IllegalStateException(ID + " (pid " + process.pid() + ") is still alive 10 s after SIGKILL");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while " + ID + " was killed", e);
        }
        return process.exitValue();
    }

    /** SIGTERM, then SIGKILL after 30 s. */
    @Override
    public void close() {
        if (!process.isAlive()) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
    }
}
