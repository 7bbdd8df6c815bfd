package io.bitrelay.deploy.bench;

import io.bitrelay.deploy.cluster.LocalCluster;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A rate-limited link between the root network namespace and one of its own, set up and torn down by
 * deploy/bench/shaped-link.sh (veth pair, tc tbf on both ends). The names and addresses are decided here
 * and handed to the script, so the two never disagree.
 */
final class ShapedLink implements AutoCloseable {
    static final String NAMESPACE = "bitrelay-shaped";
    /** Root side: the coordinator and gateway node and the workers before the namespaced one. */
    static final String UPSTREAM_HOST = "10.213.7.1";
    /** Namespace side: the namespaced worker. */
    static final String NAMESPACE_HOST = "10.213.7.2";
    /** Root side: the workers after the namespaced one (stages are ordered by host name, see the script). */
    static final String DOWNSTREAM_HOST = "10.213.7.3";

    private static final long SCRIPT_TIMEOUT_SECONDS = 60;
    private static final Pattern SENT = Pattern.compile("Sent (\\d+) bytes (\\d+) pkt \\(dropped (\\d+)");

    /**
     * @param rate  tc rate, e.g. 400kbit
     * @param burst tc bucket size in bytes, e.g. 4kb
     * @param limit tc queue in bytes before drops, e.g. 256kb
     */
    record Shape(String rate, String burst, String limit) {
        /** The rate in bits per second, or -1 when it is not written as N[k|m|g]bit. */
        double bitsPerSecond() {
            Matcher m = Pattern.compile("(\\d+(?:\\.\\d+)?)([kmg]?)bit").matcher(rate.toLowerCase(Locale.ROOT));
            if (!m.matches()) {
                return -1;
            }
            double scale = switch (m.group(2)) {
                case "k" -> 1e3;
                case "m" -> 1e6;
                case "g" -> 1e9;
                default -> 1;
            };
            return Double.parseDouble(m.group(1)) * scale;
        }
    }

    /** What one tbf has sent and dropped (cumulative since setup). */
    record ShaperCount(long bytes, long packets, long dropped) {
        ShaperCount minus(ShaperCount earlier) {
            return new ShaperCount(bytes - earlier.bytes, packets - earlier.packets, dropped - earlier.dropped);
        }
    }

    private final Path script;
    private final Shape shape;

    private ShapedLink(Path script, Shape shape) {
        this.script = script;
        this.shape = shape;
    }

    static ShapedLink setUp(Path script, Shape shape, Consumer<String> progress) {
        if (!Files.isRegularFile(script)) {
            throw new IllegalStateException("shaped-link script not found at " + script + " (set --shaped-script)");
        }
        ShapedLink link = new ShapedLink(script, shape);
        progress.accept(link.run("setup", shape.rate(), shape.burst(), shape.limit()).strip());
        return link;
    }

    Shape shape() {
        return shape;
    }

    /** Worker {@code index} (1-based) inside the namespace, the others around it on the root side. */
    LocalCluster.NamespacedWorker worker(int index) {
        return new LocalCluster.NamespacedWorker(index, NAMESPACE, NAMESPACE_HOST, UPSTREAM_HOST, DOWNSTREAM_HOST);
    }

    /** {root → namespace, namespace → root} as counted by the two shapers. */
    List<ShaperCount> counts() {
        String stats = run("stats");
        List<ShaperCount> counts = new ArrayList<>();
        Matcher m = SENT.matcher(stats);
        while (m.find()) {
            counts.add(new ShaperCount(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)), Long.parseLong(m.group(3))));
        }
        if (counts.size() != 2) {
            throw new IllegalStateException("could not read both shapers' counters from:\n" + stats);
        }
        return counts;
    }

    @Override
    public void close() {
        run("teardown");
    }

    private String run(String... arguments) {
        List<String> command = new ArrayList<>();
        command.add(script.toString());
        command.addAll(List.of(arguments));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().putAll(Map.of(
                "BITRELAY_SHAPED_NS", NAMESPACE,
                "BITRELAY_SHAPED_ROOT_ADDRS", UPSTREAM_HOST + " " + DOWNSTREAM_HOST,
                "BITRELAY_SHAPED_NS_ADDR", NAMESPACE_HOST));
        try {
            Process process = builder.start();
            byte[] output = process.getInputStream().readAllBytes(); // the script's output is a few lines
            if (!process.waitFor(SCRIPT_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new IllegalStateException(script + " " + arguments[0] + " did not finish in " + SCRIPT_TIMEOUT_SECONDS + " s");
            }
            String text = new String(output, StandardCharsets.UTF_8);
            if (process.exitValue() != 0) {
                throw new IllegalStateException(script.getFileName() + " " + arguments[0] + " failed (exit "
                        + process.exitValue() + "): " + text.strip());
            }
            return text;
        } catch (IOException e) {
            throw new IllegalStateException("could not run " + script + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running " + script, e);
        }
    }
}
