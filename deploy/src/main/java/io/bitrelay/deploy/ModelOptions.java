package io.bitrelay.deploy;

import io.bitrelay.runtime.synthetic.EmbeddedModels;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** Which checkpoint a command runs: a directory the user has, or a synthetic preset written on demand. */
public final class ModelOptions {
    @Option(names = "--model", paramLabel = "DIR",
            description = "Hugging Face OPT checkpoint directory (config.json + safetensors + tokenizer.json).")
    Path model;

    @Option(names = "--preset", paramLabel = "NAME", defaultValue = EmbeddedModels.DEFAULT_PRESET,
            description = "Without --model: synthetic checkpoint of this OPT shape (default: ${DEFAULT-VALUE}).")
    String preset;

    @Option(names = "--layers", paramLabel = "L", defaultValue = "0",
            description = "Without --model: the preset's width with L decoder layers; 0 = the preset's own (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--no-outliers", description = "Without --model: synthetic weights without planted outlier channels.")
    boolean noOutliers;

    @Option(names = "--seed-weights", paramLabel = "N", defaultValue = "1234",
            description = "Without --model: seed of the synthetic weights (default: ${DEFAULT-VALUE}).")
    long weightSeed;

    @Option(names = "--models-dir", paramLabel = "DIR",
            description = "Where synthetic checkpoints are cached (default: $BITRELAY_MODELS or ~/.cache/bitrelay/models).")
    Path modelsDir;

    /** The synthetic preset, or null when the checkpoint is the user's own (--model). */
    public String preset() {
        return model == null ? preset : null;
    }

    /** The synthetic model's decoder layers when --layers cut them, else 0. */
    public int layers() {
        return layers;
    }

    /** The checkpoint directory, writing the synthetic one first if needed. */
    public Path resolve() {
        if (model != null) {
            return model;
        }
        if (layers < 0) {
            throw new IllegalArgumentException("--layers must be >= 0, got " + layers);
        }
        Path root = modelsDir != null ? modelsDir : EmbeddedModels.defaultCacheRoot();
        SyntheticOptions options = SyntheticOptions.defaults().withSeed(weightSeed).withOutliers(!noOutliers);
        return EmbeddedModels.ensure(root, preset, layers, options, message -> System.err.println("bitrelay: " + message));
    }
}
