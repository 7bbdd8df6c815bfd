package io.bitrelay.deploy.cluster;

import io.bitrelay.actors.dataplane.MediaDriverHost;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** Runs this host's shared Aeron media driver; every bitrelay JVM on the host connects to it. */
@Command(name = "driver", mixinStandardHelpOptions = true,
        description = "Run the host's shared Aeron media driver (one per host) until stopped.")
public final class DriverCommand implements Runnable {
    @Option(names = "--aeron-dir", required = true, paramLabel = "DIR", description = "Driver directory (put it on /dev/shm).")
    Path aeronDirectory;

    @Override
    public void run() {
        System.out.println("Aeron media driver running in " + aeronDirectory + "; stop with Ctrl-C");
        MediaDriverHost.runStandalone(MediaDriverHost.Settings.defaults().withAeronDirectory(aeronDirectory)
                .withMode(MediaDriverHost.DriverMode.EMBEDDED));
    }
}
