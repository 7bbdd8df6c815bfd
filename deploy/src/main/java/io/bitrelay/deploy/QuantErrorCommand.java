package io.bitrelay.deploy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.eval.OutputError;
import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.eval.TokenWindows;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.quant.Calibration;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.QuantPlanner;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RecipeApplier;
import io.bitrelay.runtime.quant.SmoothQuant;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The output error of each quantization recipe against the unquantized model, on random token sequences:
 * what tells recipes apart on synthetic checkpoints, where weights are random and perplexity says nothing.
 * Calibration and evaluation use disjoint random sequences (different seeds).
 */
@Command(name = "quant-error", mixinStandardHelpOptions = true,
        description = "Output error (logits) of quantization recipes vs the unquantized model, e.g. on a large synthetic outlier checkpoint.")
public final class QuantErrorCommand implements Runnable {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--recipes", split = ",", defaultValue = "w8a8-naive,w8a8-pertoken,w8a8-smoothquant",
            description = "Recipes to compare with the unquantized model (default: ${DEFAULT-VALUE}).")
    List<String> recipeNames;

    @Option(names = "--sequences", defaultValue = "4", description = "Evaluation sequences (default: ${DEFAULT-VALUE}).")
    int sequences;

    @Option(names = "--seq-len", defaultValue = "128", description = "Tokens per sequence (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--calib-sequences", defaultValue = "8", description = "Calibration sequences (default: ${DEFAULT-VALUE}).")
    int calibSequences;

    @Option(names = "--calib-seq-len", defaultValue = "128", description = "Calibration tokens per sequence (default: ${DEFAULT-VALUE}).")
    int calibSeqLen;

    @Option(names = "--alpha", defaultValue = "" + SmoothQuant.DEFAULT_ALPHA, description = "SmoothQuant α (default: ${DEFAULT-VALUE}).")
    float alpha;

    @Option(names = "--seed", defaultValue = "7", description = "Seed of the random token sequences (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Mixin
    ProgressOptions progressOptions;

    record Row(String recipe, OutputError error, double seconds) {
    }

    @Override
    public void run() {
        List<QuantRecipe> recipes = recipeNames.stream().map(String::trim).map(QuantRecipe::byName).toList();
        if (sequences < 1 || seqLen < 1 || calibSequences < 1 || calibSeqLen < 1) {
            throw new IllegalArgumentException("--sequences, --seq-len, --calib-sequences and --calib-seq-len must be ≥ 1");
        }
        PrintWriter out = spec.commandLine().getOut();
        Path directory = modelOptions.resolve();
        try (OptModel model = OptModel.load(directory)) {
            int vocab = model.config().vocabSize();
            out.printf("model %s: %d layers, hidden %d, ffn %d, vocab %d%n", directory.getFileName(),
                    model.config().numLayers(), model.config().hiddenSize(), model.config().ffnDim(), vocab);
            out.flush();
            long start = System.nanoTime();
            int[] calibTokens = randomTokens(calibSequences * calibSeqLen, vocab, seed + 1);
            CalibrationStats stats = Calibration.run(model, calibTokens, calibSequences, calibSeqLen, "random tokens",
                    progress("calibrate", "sequences"));
            out.printf("calibration: %d random sequences × %d tokens, %.1f s%n", calibSequences, calibSeqLen,
                    (System.nanoTime() - start) / 1e9);
            List<int[]> evalSequences = new ArrayList<>();
            SplittableRandom random = new SplittableRandom(seed);
            for (int i = 0; i < sequences; i++) {
                evalSequences.add(randomTokens(seqLen, vocab, random.nextLong()));
            }
            List<float[][]> reference = logitsOf(model, evalSequences);
            List<int[]> calibWindows = TokenWindows.split(calibTokens, calibSeqLen, calibSequences); // what GPTQ rounds over
            List<Row> rows = new ArrayList<>();
            for (QuantRecipe recipe : recipes) {
                long recipeStart = System.nanoTime();
                try (OptModel quantized = RecipeApplier.apply(model, QuantPlanner.plan(recipe, stats, alpha), calibWindows,
                        progress("gptq " + recipe.name(), "layers"))) {
                    OutputError error = new OutputError();
                    List<float[][]> candidate = logitsOf(quantized, evalSequences);
                    for (int s = 0; s < evalSequences.size(); s++) {
                        for (int t = 0; t < seqLen; t++) {
                            error.add(reference.get(s)[t], candidate.get(s)[t]);
                        }
                    }
                    rows.add(new Row(recipe.name(), error, (System.nanoTime() - recipeStart) / 1e9));
                }
            }
            printTable(rows, out);
            out.flush();
            if (json != null) {
                writeJson(directory, rows);
            }
        }
    }

    private static List<float[][]> logitsOf(OptModel model, List<int[]> sequences) {
        List<float[][]> logits = new ArrayList<>();
        for (int[] tokens : sequences) {
            try (var cache = model.newCache()) {
                logits.add(model.forward(List.of(new SequenceChunk(tokens, cache)), true));
            }
        }
        return logits;
    }

    private static int[] randomTokens(int count, int vocab, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int[] tokens = new int[count];
        for (int i = 0; i < count; i++) {
            tokens[i] = random.nextInt(vocab);
        }
        return tokens;
    }

    private Progress progress(String label, String unit) {
        return progressOptions.progress(label, unit);
    }

    static void printTable(List<Row> rows, PrintWriter out) {
        out.println();
        out.println("| recipe | relative logit error | max abs logit error | mean KL (nats) | top-1 agreement | seconds |");
        out.println("|---|---:|---:|---:|---:|---:|");
        for (Row row : rows) {
            OutputError e = row.error();
            out.printf("| %s | %.4f | %.3f | %.5f | %.1f %% | %.1f |%n", row.recipe(), e.relativeError(), e.maxAbsError(),
                    e.meanKl(), 100 * e.top1Agreement(), row.seconds());
        }
        out.println();
    }

    private void writeJson(Path directory, List<Row> rows) {
        ObjectMapper mapper = JsonFiles.mapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("model", directory.toString());
        root.put("sequences", sequences);
        root.put("seqLen", seqLen);
        root.put("calibSequences", calibSequences);
        root.put("calibSeqLen", calibSeqLen);
        root.put("alpha", alpha);
        ArrayNode results = root.putArray("results");
        for (Row row : rows) {
            ObjectNode entry = results.addObject();
            entry.put("recipe", row.recipe());
            entry.put("relativeError", row.error().relativeError());
            entry.put("maxAbsError", row.error().maxAbsError());
            entry.put("meanKl", row.error().meanKl());
            entry.put("top1Agreement", row.error().top1Agreement());
            entry.put("positions", row.error().rows());
            entry.put("seconds", row.seconds());
        }
        JsonFiles.write(json, root);
    }
}
