package io.bitrelay.runtime.synthetic;

import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptPresets;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The models bitrelay carries with it: synthetic checkpoints of a preset shape, written on first use into
 * a cache directory and reused afterwards. A checkpoint is written into a temporary sibling and renamed
 * into place, so an interrupted write never leaves a half checkpoint that later runs would trust.
 */
public final class EmbeddedModels {
    /** The main job's model: opt-125m's shape with LLM-like outlier channels. */
    public static final String DEFAULT_PRESET = "opt-125m";
    /** Bumped whenever the synthetic writer's output changes, so caches of an older writer are not reused. */
    private static final int WRITER_VERSION = 2;

    private EmbeddedModels() {
    }

    public static Path defaultCacheRoot() {
        String configured = System.getenv("BITRELAY_MODELS");
        if (configured != null && !configured.isBlank()) {
            return Path.of(configured);
        }
        return Path.of(System.getProperty("user.home"), ".cache", "bitrelay", "models");
    }

    public static Path ensure(Path cacheRoot, String preset, SyntheticOptions options, Consumer<String> progress) {
        return ensure(cacheRoot, preset, 0, options, progress);
    }

    /** @param layers decoder layers instead of the preset's (a shallower model of the same width), or 0 for the preset's */
    public static Path ensure(Path cacheRoot, String preset, int layers, SyntheticOptions options, Consumer<String> progress) {
        OptConfig config = layers > 0 ? OptPresets.get(preset).withLayers(layers) : OptPresets.get(preset);
        String name = "synthetic-" + preset.toLowerCase(java.util.Locale.ROOT) + (layers > 0 ? "-l" + layers : "")
                + (options.outliers() ? "-outliers" : "")
                + "-" + options.storage().name().toLowerCase(java.util.Locale.ROOT) + "-seed" + options.seed() + "-v" + WRITER_VERSION;
        Path target = cacheRoot.resolve(name);
        if (Files.isRegularFile(target.resolve("config.json"))) {
            return target;
        }
        try {
            Files.createDirectories(cacheRoot);
            Path temporary = Files.createTempDirectory(cacheRoot, name + ".partial-");
            progress.accept("writing synthetic " + preset + (layers > 0 ? " (" + layers + " layers)" : "") + " checkpoint" + (options.outliers() ? " with outlier channels" : "")
                    + " to " + target + " (once) ...");
            long start = System.nanoTime();
            SyntheticCheckpointWriter.write(temporary, config, options);
            try {
                Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException raced) {
                // Another process finished the same checkpoint first: theirs is identical, keep it.
                deleteTree(temporary);
                if (!Files.isRegularFile(target.resolve("config.json"))) {
                    throw raced;
                }
            }
            progress.accept(String.format("wrote %s in %.1f s", target, (System.nanoTime() - start) / 1e9));
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the embedded model under " + cacheRoot + ": " + e.getMessage(), e);
        }
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }
}
