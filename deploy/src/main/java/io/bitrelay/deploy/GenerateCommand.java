package io.bitrelay.deploy;

import io.bitrelay.runtime.generate.Generator;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;

/** Single-process generation on the CPU: the whole model in this JVM. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text in one process (all layers on this machine's CPU).")
public final class GenerateCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Mixin
    SamplingOptions sampling;

    @Option(names = "--prompt", required = true, description = "Prompt text; repeat the option for several prompts.")
    List<String> prompts;

    @Override
    public void run() {
        Path directory = modelOptions.resolve();
        PrintStream out = System.out;
        try (OptModel model = OptModel.load(directory); OptTokenizer tokenizer = OptTokenizer.load(directory)) {
            out.printf("model %s: %d layers, hidden %d, %d heads, vocab %d%n", directory.getFileName(),
                    model.config().numLayers(), model.config().hiddenSize(), model.config().numHeads(), model.config().vocabSize());
            generateAll(model, tokenizer, prompts, sampling, out);
        }
    }

    static void generateAll(OptModel model, OptTokenizer tokenizer, List<String> prompts, SamplingOptions sampling,
                            PrintStream out) {
        Generator generator = new Generator(model);
        for (String prompt : prompts) {
            int[] ids = tokenizer.encode(prompt);
            Generator.Result result = generator.generate(ids, sampling.maxTokens, sampling.params(), token -> true);
            out.printf("%n> %s%n%s%n", prompt, tokenizer.decode(result.tokens()));
            double prefillSeconds = result.prefillNanos() / 1e9;
            double decodeSeconds = result.decodeNanos() / 1e9;
            int decoded = Math.max(0, result.tokens().length - 1);
            out.printf("  [%d prompt tokens, prefill %.1f tok/s; %d new tokens, decode %.1f tok/s; stop: %s]%n",
                    ids.length, ids.length / Math.max(prefillSeconds, 1e-9), result.tokens().length,
                    decoded / Math.max(decodeSeconds, 1e-9), result.stopReason());
        }
    }
}
