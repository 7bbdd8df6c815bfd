package io.bitrelay.deploy.bench;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The helper scripts under deploy/bench/ that some benchmarks run, and the temporary files they exchange with them. */
final class BenchScripts {
    private BenchScripts() {
    }

    /**
     * deploy/bench/{@code name} next to the deploy module this class was loaded from (target/classes or the jar),
     * else relative to the working directory (a run from the repository root).
     */
    /** Removes a bench's temporary file, if it made one; a file that will not go is left for the OS's temp cleaner. */
    static void deleteQuietly(Path file) {
        if (file == null) {
            return;
        }
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            // a stray temp file is not worth failing a measurement over
        }
    }

    static Path find(String name) {
        try {
            Path loadedFrom = Path.of(BenchScripts.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            Path deployModule = loadedFrom.getParent().getParent(); // deploy/target/{classes, bitrelay-deploy.jar}
            Path script = deployModule.resolve("bench").resolve(name);
            return Files.isRegularFile(script) ? script : Path.of("deploy/bench", name);
        } catch (URISyntaxException | RuntimeException e) {
            return Path.of("deploy/bench", name);
        }
    }
}
