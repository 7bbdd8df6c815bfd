package io.bitrelay.deploy;

import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.nio.file.Path;
import java.util.List;

/**
 * The main job on a fresh machine: the embedded synthetic model, a few prompts, answers and speed.
 * Single-process until the cluster lands; then this becomes the multi-JVM demo with the bandwidth report.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Run the embedded default model (synthetic opt-125m shape with outlier channels) on a few prompts.")
public final class DemoCommand implements Runnable {
    private static final List<String> PROMPTS = List.of(
            "The capital of France is",
            "Quantized activations travel between pipeline stages because",
            "Once upon a time");

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    SamplingOptions sampling;

    @Override
    public void run() {
        Path directory = modelOptions.resolve();
        long start = System.nanoTime();
        try (OptModel model = OptModel.load(directory); OptTokenizer tokenizer = OptTokenizer.load(directory)) {
            System.out.printf("loaded %s (%d layers, hidden %d) in %.1f s%n", directory, model.config().numLayers(),
                    model.config().hiddenSize(), (System.nanoTime() - start) / 1e9);
            System.out.println("synthetic weights are random: the text is noise; the numbers below are what to read.");
            GenerateCommand.generateAll(model, tokenizer, PROMPTS, sampling, System.out);
        }
    }
}
