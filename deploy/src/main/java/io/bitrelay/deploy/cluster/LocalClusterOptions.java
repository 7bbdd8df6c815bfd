package io.bitrelay.deploy.cluster;

import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The flags every command that starts a local cluster shares. */
public final class LocalClusterOptions {
    @Option(names = "--workers", defaultValue = "3", description = "Worker JVMs (default: ${DEFAULT-VALUE}).")
    public int workers;

    @Option(names = "--link-codec", defaultValue = "int8", description = "fp16, int8, or the RPTQ codecs int4 / int3 (default: ${DEFAULT-VALUE}).")
    public String linkCodec;

    @Option(names = "--devices", split = ",", defaultValue = "cpu",
            description = "Devices dealt to the workers round-robin: cpu, cuda:0, … (e.g. cuda:0 puts every worker on "
                    + "the one GPU, each with its own CUDA context; default: ${DEFAULT-VALUE}).")
    public List<String> devices;

    @Option(names = "--set", paramLabel = "KEY=VALUE",
            description = "Any config key for the cluster's nodes, e.g. --set bitrelay.worker.device-link-codecs=off (worker "
                    + "and data-plane keys reach the worker JVMs too).")
    public List<String> sets = List.of();

    @Option(names = "--tls", description = "Nodes talk over mutual TLS with a throwaway CA made for this run (default: "
            + "plain tcp, every node is on 127.0.0.1).")
    public boolean tls;

    @Option(names = "--logs", defaultValue = "target/bitrelay-logs", description = "Worker logs (default: ${DEFAULT-VALUE}).")
    public Path logs;

    /** These flags as a local cluster's options (all nodes on 127.0.0.1; threads per worker from the core count; --set wins). */
    public LocalCluster.Options toOptions(Path checkpoint, int httpPort, Map<String, Object> settings, Duration startTimeout) {
        Map<String, Object> merged = new HashMap<>(settings);
        if (tls) {
            merged.put("bitrelay.security.tls", "on");
        }
        merged.putAll(ConfigSets.parse(sets));
        return new LocalCluster.Options(checkpoint, workers, linkCodec, httpPort, 0, logs, merged, startTimeout, null, devices);
    }
}
