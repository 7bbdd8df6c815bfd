package io.bitrelay.deploy.cluster;

import io.bitrelay.actors.coordinator.Coordinator;
import io.bitrelay.actors.coordinator.StatsAggregator;
import io.bitrelay.actors.dataplane.IdleSettings;
import io.bitrelay.actors.dataplane.MediaDriverHost;
import io.bitrelay.actors.node.BitrelayConfig;
import io.bitrelay.actors.node.BitrelayNode;
import io.bitrelay.actors.node.NodeExit;
import io.bitrelay.actors.node.NodeOptions;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

import io.bitrelay.deploy.security.ThrowawayTls;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A cluster on this machine: this JVM runs the host's shared Aeron media driver and the coordinator +
 * gateway node; each worker is a JVM of its own, started with this JVM's java, flags and classpath, and
 * linked to its neighbours over Aeron IPC through the shared driver.
 *
 * <p>With {@link Options#namespacedWorker()} one worker runs inside a network namespace instead (for a
 * shaped link): it has its own media driver there, and every node advertises an address reachable across
 * the namespace boundary, so its links in and out become Aeron UDP through that boundary.
 */
public final class LocalCluster implements AutoCloseable {
    /**
     * @param workers        worker JVMs to start
     * @param httpPort       gateway port; 0 picks a free one
     * @param threadsPerWorker CPU threads each worker's kernels use; 0 = the cores divided among the workers
     * @param extraSettings  config overrides for every node (e.g. allow-fault-injection in tests)
     * @param namespacedWorker the worker to run in a network namespace, or null: all on 127.0.0.1 over IPC
     * @param devices        the workers' devices, dealt round-robin ("cpu", "cuda:0", …); workers dealt the same
     *                       GPU share it (and its memory)
     * @param leadCoordinator a second coordinator + gateway node, in a JVM of its own ({@link LeadCoordinator}), seeds
     *                        the cluster and holds the coordinator singleton; {@link #killCoordinator()} hands it over to
     *                        this JVM's node. The shared media driver stays in this JVM.
     */
    public record Options(Path checkpoint, int workers, String linkCodec, int httpPort, int threadsPerWorker,
                          Path logDirectory, Map<String, Object> extraSettings, Duration startTimeout,
                          NamespacedWorker namespacedWorker, List<String> devices, boolean leadCoordinator) {

        public Options {
            if (namespacedWorker != null && namespacedWorker.index() > workers) {
                throw new IllegalArgumentException("namespaced worker-" + namespacedWorker.index() + " but only "
                        + workers + " workers");
            }
            devices = List.copyOf(devices);
            if (devices.isEmpty()) {
                throw new IllegalArgumentException("no devices for the workers (give cpu or cuda:N)");
            }
            if (leadCoordinator && namespacedWorker != null) {
                throw new IllegalArgumentException("a lead coordinator JVM runs on 127.0.0.1: not with a namespaced worker");
            }
        }

        /** No lead coordinator JVM: this JVM's node holds the coordinator. */
        public Options(Path checkpoint, int workers, String linkCodec, int httpPort, int threadsPerWorker,
                       Path logDirectory, Map<String, Object> extraSettings, Duration startTimeout,
                       NamespacedWorker namespacedWorker, List<String> devices) {
            this(checkpoint, workers, linkCodec, httpPort, threadsPerWorker, logDirectory, extraSettings, startTimeout,
                    namespacedWorker, devices, false);
        }

        /** The same with a lead coordinator JVM that holds the singleton (hand-over tests and benches). */
        public Options withLeadCoordinator() {
            return new Options(checkpoint, workers, linkCodec, httpPort, threadsPerWorker, logDirectory, extraSettings,
                    startTimeout, namespacedWorker, devices, true);
        }

        /** Every worker on the CPU. */
        public Options(Path checkpoint, int workers, String linkCodec, int httpPort, int threadsPerWorker,
                       Path logDirectory, Map<String, Object> extraSettings, Duration startTimeout,
                       NamespacedWorker namespacedWorker) {
            this(checkpoint, workers, linkCodec, httpPort, threadsPerWorker, logDirectory, extraSettings, startTimeout,
                    namespacedWorker, List.of("cpu"));
        }

        /** Worker {@code index} (0-based)'s device. */
        public String deviceOf(int index) {
            return devices.get(index % devices.size());
        }

        /** How many workers share worker {@code index}'s device. */
        int workersSharingDeviceOf(int index) {
            int sharing = 0;
            for (int i = 0; i < workers; i++) {
                sharing += deviceOf(i).equals(deviceOf(index)) ? 1 : 0;
            }
            return sharing;
        }

        /** Every node on 127.0.0.1, every link Aeron IPC. */
        public Options(Path checkpoint, int workers, String linkCodec, int httpPort, int threadsPerWorker,
                       Path logDirectory, Map<String, Object> extraSettings, Duration startTimeout) {
            this(checkpoint, workers, linkCodec, httpPort, threadsPerWorker, logDirectory, extraSettings, startTimeout, null);
        }
    }

    /**
     * Worker {@code index} runs in network {@code namespace} (which must exist, e.g. from
     * deploy/bench/shaped-link.sh) and advertises {@code host}, an address of the namespace. The coordinator
     * and gateway node and the workers before it advertise {@code upstreamHost}, the workers after it
     * {@code downstreamHost}; both must be root-namespace addresses the namespace can reach.
     *
     * <p>The coordinator orders stages by host name, then worker id (same-host neighbours get IPC), so the
     * namespaced worker keeps its place in the pipeline only when upstreamHost &lt; host &lt; downstreamHost.
     *
     * @param index 1-based, as in worker-N
     */
    public record NamespacedWorker(int index, String namespace, String host, String upstreamHost, String downstreamHost) {
        public NamespacedWorker {
            if (index < 1) {
                throw new IllegalArgumentException("namespaced worker index is 1-based, got " + index);
            }
            if (upstreamHost.compareTo(host) >= 0 || host.compareTo(downstreamHost) >= 0) {
                throw new IllegalArgumentException("stages are ordered by host name: need upstreamHost < host < downstreamHost, got "
                        + upstreamHost + ", " + host + ", " + downstreamHost);
            }
        }

        /** The host worker {@code workerIndex} (1-based) advertises. */
        String hostOf(int workerIndex) {
            return workerIndex == index ? host : workerIndex < index ? upstreamHost : downstreamHost;
        }
    }

    /** Where one worker JVM runs: the command prefix that enters its namespace, its host, its driver. */
    private record WorkerPlace(List<String> prefix, String host, Path aeronDirectory, String driverMode) {
    }

    private final MediaDriverHost driver;
    private final BitrelayNode node;
    /** worker-(i + 1)'s JVM at index i, started or added, started again when it exits (within the restart policy). */
    private final WorkerSupervisor workers;
    private final Path logDirectory;
    private final Path aeronDirectory;
    private final Options options;
    private final String seed;
    private final int threadsPerWorker;
    private final Map<String, Object> settings;
    /** The run's own CA and key store when the nodes talk TLS without stores of the caller's; else null. */
    private final ThrowawayTls throwawayTls;
    /** The JVM holding the coordinator singleton at the start, or null when this JVM's node holds it. */
    private final LeadCoordinator lead;

    private LocalCluster(MediaDriverHost driver, BitrelayNode node, Path aeronDirectory, Options options, String seed,
                         int threadsPerWorker, Map<String, Object> settings, Consumer<String> events,
                         ThrowawayTls throwawayTls, LeadCoordinator lead) {
        this.throwawayTls = throwawayTls;
        this.lead = lead;
        this.logDirectory = options.logDirectory();
        this.driver = driver;
        this.node = node;
        this.aeronDirectory = aeronDirectory;
        this.options = options;
        this.seed = seed;
        this.threadsPerWorker = threadsPerWorker;
        this.settings = settings;
        this.workers = new WorkerSupervisor(this::launchWorker,
                WorkerRestartPolicy.from(node.system().settings().config()), events);
    }

    public static LocalCluster start(Options options, Consumer<String> progress) throws IOException {
        Path aeronDirectory = Files.createTempDirectory("bitrelay-aeron-");
        Files.delete(aeronDirectory); // the driver creates (and on shutdown deletes) its own directory
        progress.accept("starting the shared Aeron media driver in " + aeronDirectory);
        MediaDriverHost driver = MediaDriverHost.start(MediaDriverHost.Settings.defaults()
                .withAeronDirectory(aeronDirectory).withMode(MediaDriverHost.DriverMode.EMBEDDED)
                .withDriverIdle(IdleSettings.from(BitrelayConfig.load(options.extraSettings(), null)
                        .getConfig("bitrelay.dataplane.idle"), IdleSettings.CPU_MAX_PARK)));
        BitrelayNode node = null;
        LocalCluster cluster = null;
        LeadCoordinator lead = null;
        try {
            Map<String, Object> settings = new HashMap<>(options.extraSettings());
            settings.put("bitrelay.coordinator.checkpoint-dir", options.checkpoint().toString());
            settings.put("bitrelay.coordinator.link-codec", options.linkCodec());
            settings.put("bitrelay.coordinator.expected-workers", options.workers());
            settings.put("bitrelay.gateway.port", options.httpPort());
            settings.put("bitrelay.gateway.host", "127.0.0.1");
            // Loopback only, so plain tcp unless asked (--tls): then a throwaway CA and key store for this run.
            boolean tls = Set.of("on", "true", "yes").contains(
                    String.valueOf(settings.getOrDefault("bitrelay.security.tls", "off")).toLowerCase(java.util.Locale.ROOT));
            settings.put("bitrelay.security.tls", tls ? "on" : "off");
            ThrowawayTls throwawayTls = tls && !settings.containsKey("bitrelay.security.key-store")
                    ? ThrowawayTls.create(settings) : null;
            if (tls) {
                progress.accept("nodes talk over mutual TLS (" + settings.get("bitrelay.security.key-store") + ")");
            }
            NamespacedWorker namespaced = options.namespacedWorker();
            String nodeHost = namespaced == null ? "127.0.0.1" : namespaced.upstreamHost();
            Files.createDirectories(options.logDirectory());
            List<String> seeds = List.of();
            if (options.leadCoordinator()) {
                Path leadLog = options.logDirectory().resolve(LeadCoordinator.ID + ".log");
                lead = LeadCoordinator.start(settings, leadLog, throwawayTls);
                seeds = List.of(lead.seed());
                progress.accept("started " + LeadCoordinator.ID + " (coordinator + gateway, the singleton's first node) at "
                        + lead.seed() + " (log: " + leadLog + ")");
            }
            progress.accept("starting the coordinator and gateway node on " + nodeHost);
            node = BitrelayNode.start(new NodeOptions(Set.of("coordinator", "gateway"), nodeHost, 0, seeds, "gateway"),
                    settings, null, w -> {
                        throw new IllegalStateException("this node has no worker");
                    });
            String seed = node.seedAddress();
            int threads = options.threadsPerWorker() > 0 ? options.threadsPerWorker()
                    : Math.max(1, Runtime.getRuntime().availableProcessors() / options.workers());
            cluster = new LocalCluster(driver, node, aeronDirectory, options, seed, threads, settings, progress,
                    throwawayTls, lead);
            for (int i = 0; i < options.workers(); i++) {
                progress.accept(cluster.startWorker());
            }
            cluster.awaitServing(options.startTimeout(), progress);
            return cluster;
        } catch (IOException | RuntimeException e) {
            if (cluster != null) {
                cluster.workers.close();
            }
            if (node != null) {
                node.close();
            }
            if (lead != null) {
                lead.close();
            }
            driver.close();
            throw e;
        }
    }

    /** Starts the next worker JVM (worker-N, N = workers so far + 1); returns what to tell the user. */
    private String startWorker() throws IOException {
        String id = workers.add();
        NamespacedWorker namespaced = options.namespacedWorker();
        return "started " + id + (namespaced != null && namespaced.index() == workers.size() ? " in network namespace "
                + namespaced.namespace() : "") + " (log: " + logDirectory.resolve(id + ".log") + ")";
    }

    /** Worker {@code index}'s JVM; a restart appends to the log of the JVMs before it. */
    private Process launchWorker(int index, boolean restart) throws IOException {
        String id = "worker-" + (index + 1);
        Path log = logDirectory.resolve(id + ".log");
        WorkerPlace place = place(index + 1, options.namespacedWorker(), aeronDirectory);
        List<String> command = workerCommand(index, id, seed, place, options, threadsPerWorker, settings);
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(restart ? ProcessBuilder.Redirect.appendTo(log.toFile()) : ProcessBuilder.Redirect.to(log.toFile()));
        if (throwawayTls != null) {
            throwawayTls.export(builder.environment());
        }
        return builder.start();
    }

    /**
     * Starts one more worker JVM once the cluster serves: beyond expected-workers it holds no stage, a standby that
     * takes the place of a worker that is lost. Returns its id (worker-N).
     */
    public String addWorker(Consumer<String> progress) throws IOException {
        progress.accept(startWorker());
        return "worker-" + workers.size();
    }

    /**
     * Kills worker {@code workerId}'s JVM at once, as kill -9 would (chaos tests); returns when it is gone. It is
     * started again within bitrelay.local-cluster.restart, as any worker that exits.
     */
    public void killWorker(String workerId) {
        Process worker = workers.process(workerId);
        worker.destroyForcibly();
        try {
            if (!worker.waitFor(10, TimeUnit.SECONDS)) {
                throw new IllegalStateException(workerId + " (pid " + worker.pid() + ") is still alive 10 s after SIGKILL");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while " + workerId + " was killed", e);
        }
    }

    /**
     * Sends worker {@code workerId}'s JVM SIGTERM, as a rolling restart would: it drains (its stage moves, its sequences
     * replay elsewhere), leaves the cluster and exits; then it is started again. Returns at once.
     */
    public void stopWorker(String workerId) {
        workers.process(workerId).destroy();
    }

    /** Freezes worker {@code workerId}'s JVM, as kill -STOP (a long GC pause, a VM stall) would (chaos tests). */
    public void pauseWorker(String workerId) {
        signal(workerId, "STOP");
    }

    /** Lets a paused worker's JVM run again (kill -CONT). */
    public void resumeWorker(String workerId) {
        signal(workerId, "CONT");
    }

    private void signal(String workerId, String signal) {
        long pid = workers.process(workerId).pid();
        try {
            Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).inheritIO().start();
            if (!kill.waitFor(10, TimeUnit.SECONDS) || kill.exitValue() != 0) {
                throw new IllegalStateException("kill -" + signal + " " + pid + " (" + workerId + ") failed");
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot run kill -" + signal + " for " + workerId + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while signalling " + workerId, e);
        }
    }

    /**
     * Kills the lead coordinator JVM at once, as kill -9 would: the coordinator singleton moves to this JVM's node.
     * Returns its exit code once it is gone.
     *
     * @throws IllegalStateException without a lead coordinator ({@link Options#leadCoordinator()})
     */
    public int killCoordinator() {
        return requireLead().kill();
    }

    /**
     * Sends the lead coordinator JVM SIGTERM: its gateway ends its open requests (bitrelay.gateway.end-requests-after),
     * its node leaves the cluster and the coordinator singleton is handed over to this JVM's node. Returns at once.
     */
    public void stopCoordinator() {
        requireLead().stop();
    }

    /** Waits for the lead coordinator JVM to exit; its exit code, or −1 if it still runs after {@code timeout}. */
    public int awaitCoordinatorExit(Duration timeout) throws InterruptedException {
        return requireLead().awaitExit(timeout);
    }

    /** The lead coordinator JVM's gateway (HTTP), once it has bound it. */
    public InetSocketAddress leadCoordinatorHttpAddress() {
        return requireLead().gatewayAddress(Duration.ofSeconds(60));
    }

    private LeadCoordinator requireLead() {
        if (lead == null) {
            throw new IllegalStateException("this cluster has no lead coordinator JVM (Options.withLeadCoordinator)");
        }
        return lead;
    }

    /** The lead coordinator JVM's cluster address (host:port), or null without one. */
    public String leadCoordinatorAddress() {
        return lead == null ? null : lead.seed();
    }

    /** The exit codes of worker {@code workerId}'s JVMs that have exited so far, oldest first (NodeExit's codes). */
    public List<Integer> workerExitCodes(String workerId) {
        return workers.exitCodes(workerId);
    }

    /** Worker {@code workerId}'s current JVM (a new one after each restart). */
    public ProcessHandle workerProcess(String workerId) {
        return workers.process(workerId).toHandle();
    }

    /**
     * The namespaced worker gets a driver of its own, embedded in its JVM: UDP is received by the driver
     * process, which must live in the worker's namespace. Its directory differs from the shared one because
     * the file system is shared across network namespaces: the same path would reach the root namespace's driver.
     */
    private static WorkerPlace place(int workerIndex, NamespacedWorker namespaced, Path sharedAeronDirectory) throws IOException {
        if (namespaced == null) {
            return new WorkerPlace(List.of(), "127.0.0.1", sharedAeronDirectory, "external");
        }
        if (workerIndex != namespaced.index()) {
            return new WorkerPlace(List.of(), namespaced.hostOf(workerIndex), sharedAeronDirectory, "external");
        }
        Path own = Files.createTempDirectory("bitrelay-aeron-" + namespaced.namespace() + "-");
        Files.delete(own); // the worker's driver creates (and on shutdown deletes) it
        return new WorkerPlace(List.of("ip", "netns", "exec", namespaced.namespace()), namespaced.host(), own, "embedded");
    }

    /** The settings a worker JVM reads (WorkerSettings, CudaSettings, its data plane): --set overrides reach it. */
    private static final List<String> WORKER_SETTING_PREFIXES = List.of("bitrelay.worker.", "bitrelay.dataplane.",
            "bitrelay.cuda.", "bitrelay.security.");

    private static List<String> workerCommand(int index, String id, String seed, WorkerPlace place, Options options, int threads,
                                              Map<String, Object> settings) {
        List<String> command = new ArrayList<>(place.prefix());
        command.add(ProcessHandle.current().info().command().orElse("java"));
        for (String argument : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            // Keep module and access flags; heap, debugger and agent flags are this JVM's own business.
            if (argument.startsWith("--add-") || argument.startsWith("--enable-native-access")) {
                command.add(argument);
            }
        }
        command.add("-Xmx2g");
        command.add("-Dbitrelay.cpu.threads=" + threads);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add("io.bitrelay.deploy.BitrelayCli");
        command.add("node");
        command.add("--roles=worker");
        command.add("--host=" + place.host());
        command.add("--port=0");
        command.add("--seed=" + seed);
        command.add("--worker-id=" + id);
        command.add("--set=bitrelay.dataplane.aeron-dir=" + place.aeronDirectory());
        command.add("--set=bitrelay.dataplane.driver=" + place.driverMode());
        command.add("--set=bitrelay.worker.workers-per-host=" + options.workers());
        command.add("--set=bitrelay.worker.device=" + options.deviceOf(index));
        command.add("--set=bitrelay.worker.workers-per-device=" + options.workersSharingDeviceOf(index));
        for (Map.Entry<String, Object> entry : settings.entrySet()) {
            if (WORKER_SETTING_PREFIXES.stream().anyMatch(entry.getKey()::startsWith)) {
                command.add("--set=" + entry.getKey() + "=" + entry.getValue());
            }
        }
        if (!place.prefix().isEmpty()) {
            // A later --set wins: the namespaced worker must keep its own driver whatever the overrides say.
            command.add("--set=bitrelay.dataplane.aeron-dir=" + place.aeronDirectory());
            command.add("--set=bitrelay.dataplane.driver=" + place.driverMode());
        }
        return command;
    }

    private void awaitServing(Duration timeout, Consumer<String> progress) {
        long deadline = System.nanoTime() + timeout.toNanos();
        String last = "";
        while (System.nanoTime() < deadline) {
            for (int i = 0; i < workers.size(); i++) {
                String id = "worker-" + (i + 1);
                List<Integer> exits = workers.exitCodes(id);
                // A worker the cluster downed (a false alarm on a starved host) is started again: wait for it. Any
                // other exit is a worker that cannot start (a setting, the model): fail now with its log.
                boolean restarting = exits.stream().allMatch(code -> code == NodeExit.REMOVED_FROM_CLUSTER) && !workers.givenUp(id);
                if (!exits.isEmpty() && !restarting) {
                    throw new IllegalStateException(id + " exited with code " + exits.getLast()
                            + " while the cluster started; the end of its log:\n" + logTail(logDirectory.resolve("worker-" + (i + 1) + ".log")));
                }
            }
            Coordinator.Status status = status();
            if (status != null) {
                long ready = java.util.Arrays.stream(status.stages()).filter(Coordinator.StageView::ready).count();
                String line = status.phase().label() + ": " + status.workers() + " worker(s) joined"
                        + (status.stages().length > 0 ? ", " + ready + "/" + status.stages().length + " stages loaded" : "");
                if (!line.equals(last)) {
                    progress.accept(line);
                    last = line;
                }
                if (status.serving()) {
                    return;
                }
                if (status.failed()) {
                    throw new IllegalStateException("the cluster failed to start: " + status.error());
                }
            }
            sleep(200);
        }
        throw new IllegalStateException("the cluster did not start serving within " + timeout + " (last: " + last + ")");
    }

    private static String logTail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
        } catch (IOException | RuntimeException e) {
            return "(cannot read " + log + ": " + e.getMessage() + ")";
        }
    }

    /** The coordinator's status, or null when it does not answer within a second. */
    public Coordinator.Status status() {
        try {
            return AskPattern.<Coordinator.Command, Coordinator.Status>ask(node.coordinator(), Coordinator.GetStatus::new,
                    Duration.ofSeconds(1), node.system().scheduler()).toCompletableFuture().get(2, TimeUnit.SECONDS);
        } catch (Exception e) {
            return null;
        }
    }

    public StatsAggregator.PipelineStats stats() {
        try {
            return AskPattern.<Coordinator.Command, StatsAggregator.PipelineStats>ask(node.coordinator(),
                    Coordinator.CollectStats::new, Duration.ofSeconds(15), node.system().scheduler())
                    .toCompletableFuture().get(20, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("could not collect link statistics: " + e.getMessage(), e);
        }
    }

    /** Corrupts the next frame stage {@code stage} sends (workers must run with allow-fault-injection). */
    public void injectFault(int stage, String kind) {
        node.coordinator().tell(new Coordinator.InjectFault(stage, kind));
    }

    public BandwidthReport bandwidthReport() {
        return BandwidthReport.of(stats(), status());
    }

    public InetSocketAddress httpAddress() {
        return node.httpAddress();
    }

    public BitrelayNode node() {
        return node;
    }

    public Path aeronDirectory() {
        return aeronDirectory;
    }

    @Override
    public void close() {
        // On SIGTERM/Ctrl-C Pekko's own JVM hook may have shut the node's actor system down already (the workers'
        // drains take a moment), and the node's close then fails; the driver must go anyway, or its files stay.
        try {
            stopPlacing();
            workers.close();
            node.close();
            if (lead != null) {
                lead.close();
            }
        } finally {
            driver.close();
        }
    }

    /** Tells the coordinator that every worker is about to stop, so their drains rebuild nothing; best effort. */
    private void stopPlacing() {
        try {
            AskPattern.<Coordinator.Command, Coordinator.PlacingStopped>ask(node.coordinator(), Coordinator.StopPlacing::new,
                    Duration.ofSeconds(2), node.system().scheduler()).toCompletableFuture().get(3, TimeUnit.SECONDS);
        } catch (Exception e) {
            // the node's actor system may be down already (a JVM hook ran first); the workers still stop
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while the cluster started", e);
        }
    }
}
