package io.bitrelay.deploy.bench;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The helper scripts under deploy/bench/ that some benchmarks run. */
final class BenchScripts {
    private BenchScripts() {
    }

    /**
     * deploy/bench/{@code name} next to the deploy module this class was loaded from (target/classes or the jar),
     * else relative to the working directory (a run from the repository root).
     */
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
