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
    private final Path log;

    private LeadCoordinator(Process process, String seed, Path log) {
        this.process = process;
        this.seed = seed;
        this.log = log;
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
        return new LeadCoordinator(builder.start(), "127.0.0.1:" + port, log);
    }

    /** Its Pekko address as host:port: the seed of the local cluster's node. */
    String seed() {
        return seed;
    }

    boolean alive() {
        return process.isAlive();
    }

    /** Its gateway's HTTP address, from the line `bitrelay node` prints once up; waits for it up to {@code timeout}. */
    java.net.InetSocketAddress gatewayAddress(java.time.Duration timeout) {
        java.util.regex.Pattern up = java.util.regex.Pattern.compile("gateway on http://([^:/\\s]+):(\\d+)");
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            try {
                java.util.regex.Matcher found = up.matcher(java.nio.file.Files.readString(log));
                if (found.find()) {
                    return new java.net.InetSocketAddress(found.group(1), Integer.parseInt(found.group(2)));
                }
                Thread.sleep(100);
            } catch (IOException e) {
                throw new IllegalStateException("cannot read " + log + ": " + e.getMessage(), e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for " + ID + "'s gateway", e);
            }
        }
        throw new IllegalStateException(ID + " did not report its gateway within " + timeout + " (see " + log + ")");
    }

    /** SIGTERM, as a rolling restart would: it ends its gateway's open requests, leaves, and exits. Returns at once. */
    void stop() {
        process.destroy();
    }

    /** Waits for the JVM to exit; its exit code, or −1 if it is still running after {@code timeout}. */
    int awaitExit(java.time.Duration timeout) throws InterruptedException {
        return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
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
