package io.bitrelay.deploy.cluster;

import picocli.CommandLine.Option;

import java.nio.file.Path;

/** The flags every command that starts a local cluster shares. */
public final class LocalClusterOptions {
    @Option(names = "--workers", defaultValue = "3", description = "Worker JVMs (default: ${DEFAULT-VALUE}).")
    public int workers;

    @Option(names = "--link-codec", defaultValue = "int8", description = "fp16, int8, or the RPTQ codecs int4 / int3 (default: ${DEFAULT-VALUE}).")
    public String linkCodec;

    @Option(names = "--logs", defaultValue = "target/bitrelay-logs", description = "Worker logs (default: ${DEFAULT-VALUE}).")
    public Path logs;
}
