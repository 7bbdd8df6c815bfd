package io.bitrelay.deploy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.eval.Perplexity;
import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.eval.TokenWindows;
import io.bitrelay.runtime.model.opt.KvPrecision;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.quant.Calibration;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.ClusterRangeSearch;
import io.bitrelay.runtime.quant.HessianCollector;
import io.bitrelay.runtime.quant.Hessians;
import io.bitrelay.runtime.quant.QuantPlan;
import io.bitrelay.runtime.quant.QuantPlanner;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RangeEstimator;
import io.bitrelay.runtime.quant.RecipeApplier;
import io.bitrelay.runtime.quant.SequentialGptq;
import io.bitrelay.runtime.quant.SmoothQuant;
import io.bitrelay.runtime.tokenizer.OptTokenizer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Perplexity of quantization recipes on a text, in one process on the CPU. The text is tokenized whole
 * with the checkpoint's tokenizer and no BOS, cut into non-overlapping windows, and every next-token
 * prediction inside a window is scored ({@link Perplexity}). Calibration runs once, on the FP32 model,
 * and every recipe is built from the same statistics.
 */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Perplexity of FP32, W8A8 (naive, per-token, SmoothQuant) and low-bit (W4A16, W4A8/W4A4/W4A3 "
                + "per-tensor, per-token, RPTQ) recipes on a text file.")
public final class EvalCommand implements Runnable {
    static final String DEFAULT_RECIPES = "fp32,w8a8-naive,w8a8-pertoken,w8a8-smoothquant";

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--text", required = true, paramLabel = "FILE",
            description = "Evaluation text (e.g. WikiText-2 test.txt), tokenized whole without BOS.")
    Path text;

    @Option(names = "--seq-len", paramLabel = "N", defaultValue = "1024",
            description = "Tokens per non-overlapping window (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--max-windows", paramLabel = "N", defaultValue = "0",
            description = "Score only the first N windows, to bound the run time; 0 = all (default: ${DEFAULT-VALUE}).")
    int maxWindows;

    @Option(names = "--recipes", paramLabel = "LIST", split = ",", defaultValue = DEFAULT_RECIPES,
            description = "Comma-separated recipes: fp32, w8a8-naive, w8a8-pertoken, w8a8-smoothquant, "
                    + "w8a8-smoothquant-static, w4a16, w4a16-g128, w8a8-rptq, w4a8-pertensor, w4a8-pertoken, w4a8-rptq, "
                    + "w4a8-rptq-g128, w4a4-pertensor, w4a4-pertoken, w4a4-rptq, w4a4-rptq-g128, w4a3-rptq, "
                    + "w4a3-rptq-g128; channel-centred w4a16-shift, w4a16-g128-shift, w4a8-rptq-shift, w4a8-rptq-g128-shift, "
                    + "w4a4-rptq-shift, w4a4-rptq-g128-shift; any low-bit recipe + -gptq for GPTQ-rounded weights "
                    + "(e.g. w4a16-gptq, w4a8-rptq-shift-gptq) (default: ${DEFAULT-VALUE}).")
    List<String> recipeNames;

    @Option(names = "--clusters", paramLabel = "K", defaultValue = "" + QuantPlanner.DEFAULT_CLUSTERS,
            description = "RPTQ channel clusters per activation site (the *-rptq recipes) (default: ${DEFAULT-VALUE}).")
    int clusters;

    @Option(names = {"--kv", "--kv-bits"}, paramLabel = "LIST", split = ",", defaultValue = "fp32",
            description = "KV cache precisions to evaluate every recipe with: fp32, int8, int4, int3 (or bits 16, 8, 4, 3; "
                    + "16 = not quantized) (default: ${DEFAULT-VALUE}).")
    List<String> kvNames;

    @Option(names = "--calib-text", paramLabel = "FILE",
            description = "Calibration text (default: the --text file; better a different split, e.g. WikiText-2 valid.txt).")
    Path calibText;

    @Option(names = "--calib-sequences", paramLabel = "N", defaultValue = "" + Calibration.DEFAULT_SEQUENCES,
            description = "Calibration sequences (default: ${DEFAULT-VALUE}).")
    int calibSequences;

    @Option(names = "--calib-seq-len", paramLabel = "N", defaultValue = "" + Calibration.DEFAULT_SEQ_LEN,
            description = "Tokens per calibration sequence (default: ${DEFAULT-VALUE}).")
    int calibSeqLen;

    @Option(names = "--alpha", paramLabel = "A", defaultValue = "" + SmoothQuant.DEFAULT_ALPHA,
            description = "SmoothQuant migration strength α in [0, 1] (default: ${DEFAULT-VALUE}).")
    float alpha;

    @Option(names = "--act-ranges", paramLabel = "ESTIMATOR", defaultValue = "batch-mean",
            description = "How calibration sets each channel's static activation range (RPTQ clusters and scales, "
                    + "per-tensor ranges, -shift centres): batch-mean (the mean over calibration sequences of each "
                    + "sequence's min and max: stable as calibration grows) or min-max (the extremes over every "
                    + "calibration token: widen with more data); W8A8 scales use the true absmax either way "
                    + "(default: ${DEFAULT-VALUE}).")
    String actRanges;

    @Option(names = "--weights", paramLabel = "GRID", defaultValue = "asymmetric",
            description = "Grid of the 3/4-bit weights of the low-bit recipes: asymmetric (per channel or group a scale "
                    + "and a zero point, all 16 levels at 4 bits, as GPTQ's and RPTQ's code) or symmetric (±7 at 4 bits, "
                    + "no zero point) (default: ${DEFAULT-VALUE}).")
    String weightGrid;

    @Option(names = "--bias-correction", paramLabel = "on|off", defaultValue = "off",
            description = "GPTQ recipes: fold each rounded linear's mean output error on the calibration inputs, "
                    + "(Ŵ − W)·mean(x), into its bias (default: ${DEFAULT-VALUE}).")
    String biasCorrectionOption;

    @Option(names = "--act-clip", paramLabel = "off|search", defaultValue = "off",
            description = "RPTQ recipes rounded with GPTQ (sequential pass): search each cluster's static activation "
                    + "range, layer by layer on that layer's calibration inputs, for the one (0.3 to 1.5 times the "
                    + "calibrated range, both ends, then each end) that minimises the error it causes in the linears' "
                    + "outputs; off keeps the calibrated ranges (default: ${DEFAULT-VALUE}).")
    String actClipOption;

    @Option(names = "--act-clip-rows", paramLabel = "N", defaultValue = "" + ClusterRangeSearch.DEFAULT_ROWS,
            description = "With --act-clip search: calibration rows per layer and linear input the search measures on "
                    + "(a uniform sample of all calibration tokens) (default: ${DEFAULT-VALUE}).")
    int actClipRows;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Use these saved calibration statistics (JSON) instead of calibrating.")
    Path calibrationIn;

    @Option(names = "--save-calibration", paramLabel = "FILE", description = "Write the calibration statistics (JSON) here.")
    Path calibrationOut;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Mixin
    ProgressOptions progressOptions;

    /** How GPTQ recipes gather the moments they round with. */
    enum GptqPass { SEQUENTIAL, ONE_PASS }

    @Option(names = "--gptq", paramLabel = "PASS", defaultValue = "sequential", converter = GptqPassConverter.class,
            description = "GPTQ recipes: sequential (layer by layer, each layer's moments from the quantized layers "
                    + "before it; one layer's moments in memory) or one-pass (every layer's moments from the FP32 "
                    + "calibration pass; the only way with --stages) (default: ${DEFAULT-VALUE}).")
    GptqPass gptqPass;

    static final class GptqPassConverter implements CommandLine.ITypeConverter<GptqPass> {
        @Override
        public GptqPass convert(String value) {
            return switch (value) {
                case "sequential" -> GptqPass.SEQUENTIAL;
                case "one-pass" -> GptqPass.ONE_PASS;
                default -> throw new CommandLine.TypeConversionException("'" + value + "' is not sequential or one-pass");
            };
        }
    }

    @Option(names = "--stages", paramLabel = "S", defaultValue = "1",
            description = "Split the layers into S pipeline stages, with link frames between them (see --link-codec) (default: ${DEFAULT-VALUE}).")
    int stages;

    @Option(names = "--link-codec", paramLabel = "LIST", split = ",",
            description = "With --stages: link codecs to evaluate, each encoding and decoding the real frames between stages: "
                    + "none (no links), fp16, int8, int4, int3 (RPTQ, planned from the stages' output ranges) (default: none,fp16).")
    List<String> linkCodecs = List.of();

    @Option(names = "--link-clusters", paramLabel = "N", defaultValue = "8",
            description = "RPTQ channel clusters per link (default: ${DEFAULT-VALUE}).")
    int linkClusters;

    @Option(names = "--endpoint", paramLabel = "URL",
            description = "Score the windows through a running OpenAI-compatible server instead (e.g. a bitrelay cluster's "
                    + "gateway, http://localhost:8080): one POST /v1/completions per window with its token ids, echo, "
                    + "max_tokens 0, logprobs 0. The server serves its own recipe: --recipes, --kv and --stages do not apply; "
                    + "--model only gives the tokenizer.")
    java.net.URI endpoint;

    @Option(names = "--in-flight", paramLabel = "N", defaultValue = "4",
            description = "With --endpoint: windows in flight at once (default: ${DEFAULT-VALUE}).")
    int inFlight;


    /** One recipe's outcome with one KV cache precision; linearBytes: what the six decoder linears hold. */
    record Row(QuantRecipe recipe, KvPrecision kv, Perplexity.Result result, long linearBytes) {
        Row(QuantRecipe recipe, Perplexity.Result result, long linearBytes) {
            this(recipe, KvPrecision.FP32, result, linearBytes);
        }

        /** The recipe's name, with "+kv8", "+kv4", "+kv3" for a quantized cache. */
        String name() {
            return recipe.name() + (kv.quantized() ? "+kv" + kv.bits() : "");
        }

        boolean baseline() {
            return recipe.equals(QuantRecipe.FP32) && !kv.quantized();
        }
    }

    @Override
    public void run() {
        boolean asymmetricWeights = switch (weightGrid) {
            case "asymmetric" -> true;
            case "symmetric" -> false;
            default -> throw new CommandLine.ParameterException(spec.commandLine(),
                    "--weights: '" + weightGrid + "' is not asymmetric or symmetric");
        };
        rangeEstimator(); // a bad --act-ranges fails before the model loads
        boolean actClip = switch (actClipOption) {
            case "search" -> true;
            case "off" -> false;
            default -> throw new CommandLine.ParameterException(spec.commandLine(),
                    "--act-clip: '" + actClipOption + "' is not off or search");
        };
        if (actClip && actClipRows < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--act-clip-rows must be ≥ 1, got " + actClipRows);
        }
        if (actClip && (gptqPass == GptqPass.ONE_PASS || stages > 1 || !linkCodecs.isEmpty())) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--act-clip search runs in GPTQ's sequential "
                    + "pass: drop --gptq one-pass, --stages and --link-codec");
        }
        boolean biasCorrection = switch (biasCorrectionOption) {
            case "on" -> true;
            case "off" -> false;
            default -> throw new CommandLine.ParameterException(spec.commandLine(),
                    "--bias-correction: '" + biasCorrectionOption + "' is not on or off");
        };
        List<QuantRecipe> recipes = recipeNames.stream().map(String::trim).map(QuantRecipe::byName)
                .map(r -> r.withAsymmetricWeights(asymmetricWeights).withBiasCorrection(biasCorrection)).toList();
        List<KvPrecision> kvPrecisions = kvNames.stream().map(KvPrecision::parse).distinct().toList();
        if (seqLen < 2 || calibSeqLen < 2 || calibSequences < 1) {
            throw new IllegalArgumentException("--seq-len and --calib-seq-len must be ≥ 2, --calib-sequences ≥ 1");
        }
        PrintWriter out = spec.commandLine().getOut();
        Path directory = modelOptions.resolve();
        if (endpoint != null) {
            runThroughEndpoint(directory, out);
            return;
        }
        try (OptModel model = OptModel.load(directory); OptTokenizer tokenizer = OptTokenizer.load(directory)) {
            int[] tokens = tokenizer.encodeWithoutSpecialTokens(readText(text));
            int available = TokenWindows.available(tokens.length, seqLen);
            int windows = maxWindows > 0 ? Math.min(maxWindows, available) : available;
            out.printf("model %s: %d layers, hidden %d, vocab %d%n", directory.getFileName(), model.config().numLayers(),
                    model.config().hiddenSize(), model.config().vocabSize());
            out.printf("text %s: %d tokens (no BOS), %d windows of %d available, scoring the first %d%n",
                    text.getFileName(), tokens.length, available, seqLen, windows);
            out.flush();

            Calibrated calibrated = calibrationFor(recipes, model, tokenizer, out);
            CalibrationStats stats = calibrated.stats();
            if (stages > 1 || !linkCodecs.isEmpty()) {
                runStaged(directory, recipes, calibrated, tokenizer, tokens, out);
                return;
            }
            List<Row> rows = new ArrayList<>();
            for (QuantRecipe recipe : recipes) {
                try (OptModel quantized = quantize(model, recipe, calibrated)) {
                    long linearBytes = RecipeApplier.linearBytes(quantized.weights());
                    for (KvPrecision kv : kvPrecisions) {
                        String name = new Row(recipe, kv, null, linearBytes).name();
                        Perplexity.Result result = Perplexity.evaluate(quantized.withKvPrecision(kv), tokens, seqLen,
                                maxWindows, progress("eval " + name, "windows"));
                        rows.add(new Row(recipe, kv, result, linearBytes));
                        // a whole-test run takes minutes per recipe: each figure as soon as it exists
                        out.printf("%s: perplexity %.3f over %d windows, %.1f s%n", name, result.perplexity(),
                                result.windows(), result.seconds());
                        out.flush();
                    }
                }
            }
            printTable(rows, out);
            out.println("Linear layers (q, k, v, out_proj, fc1, fc2) are quantized (linear MiB: their weights, scales, "
                    + "biases in memory); attention (q·kᵀ, p·v), LayerNorms, embeddings and the LM head stay FP32. "
                    + "RPTQ clusters per site: " + clusters + "; 3/4-bit weights " + weightGrid
                    + "; GPTQ bias correction " + biasCorrectionOption + "; RPTQ-GPTQ range search " + actClipOption
                    + "; activation ranges "
                    + (stats == null ? "—" : stats.source().ranges() == null ? "min-max (not recorded)"
                    : stats.source().ranges().key()) + ".");
            out.flush();
            if (json != null) {
                writeJson(directory, tokens.length, stats, rows);
            }
        }
    }

    /** The same windows scored by a running server ({@link EndpointPerplexity}), printed as the in-process table. */
    private void runThroughEndpoint(Path tokenizerDirectory, PrintWriter out) {
        int[] tokens;
        try (OptTokenizer tokenizer = OptTokenizer.load(tokenizerDirectory)) {
            tokens = tokenizer.encodeWithoutSpecialTokens(readText(text));
        }
        List<int[]> windows = TokenWindows.split(tokens, seqLen, maxWindows);
        if (windows.isEmpty()) {
            throw new IllegalArgumentException("the text has " + tokens.length + " tokens, fewer than one window of " + seqLen);
        }
        EndpointPerplexity client = new EndpointPerplexity(endpoint, java.time.Duration.ofMinutes(10));
        EndpointPerplexity.Served served = client.served();
        out.printf("endpoint %s serves %s (%s)%n", endpoint, served.model(), served.label());
        out.printf("text %s: %d tokens (no BOS, tokenizer of %s), %d windows of %d available, scoring the first %d, %d in flight%n",
                text.getFileName(), tokens.length, tokenizerDirectory.getFileName(), TokenWindows.available(tokens.length, seqLen),
                seqLen, windows.size(), inFlight);
        out.flush();
        Perplexity.Result r = client.evaluate(served.model(), windows, inFlight, progress("eval " + endpoint, "windows"));
        String label = served.label() + " @ " + endpoint;
        out.println();
        out.println("| recipe | perplexity | Δ vs fp32 | linear MiB | windows | tokens | seconds |");
        out.println("|---|---:|---:|---:|---:|---:|---:|");
        out.printf("| %s | %.3f | — | — | %d | %d | %.1f |%n", label, r.perplexity(), r.windows(), r.predictedTokens(), r.seconds());
        out.println();
        out.flush();
        if (json != null) {
            ObjectNode root = JsonFiles.mapper().createObjectNode();
            root.put("endpoint", endpoint.toString());
            root.put("model", served.model());
            ObjectNode details = root.putObject("served");
            served.details().forEach(details::put);
            root.put("text", text.toString());
            root.put("textTokens", tokens.length);
            root.put("seqLen", seqLen);
            root.put("maxWindows", maxWindows);
            ObjectNode entry = root.putArray("results").addObject();
            entry.put("recipe", label);
            entry.put("perplexity", r.perplexity());
            entry.put("meanNll", r.meanNll());
            entry.put("windows", r.windows());
            entry.put("tokens", r.predictedTokens());
            entry.put("seconds", r.seconds());
            JsonFiles.write(json, root);
        }
    }

    /** Perplexity through S stages with link frames between them ({@link StagedEval}). */
    private void runStaged(Path directory, List<QuantRecipe> recipes, Calibrated calibrated, OptTokenizer tokenizer, int[] tokens,
                           PrintWriter out) {
        int[] calibTokens = tokenizer.encodeWithoutSpecialTokens(readText(calibText != null ? calibText : text));
        // As the coordinator: a few sequences suffice for the per-channel ranges of the residual stream.
        List<int[]> linkCalibration = TokenWindows.split(calibTokens, calibSeqLen, Math.min(8, calibSequences));
        List<String> links = linkCodecs.isEmpty() ? List.of(StagedEval.NO_LINKS, "fp16") : linkCodecs;
        List<StagedEval.Row> rows = StagedEval.run(directory, recipes, links, stages, calibrated.stats(), calibrated.hessians(),
                alpha, linkCalibration, tokens, seqLen,
                maxWindows, linkClusters, this::progress, out);
        Double baseline = rows.stream().filter(r -> r.recipe().equals(QuantRecipe.FP32.name()) && r.link().equals(StagedEval.NO_LINKS))
                .map(r -> r.result().perplexity()).findFirst().orElse(null);
        StagedEval.printTable(rows, baseline, out);
    }

    /**
     * The calibration statistics; for GPTQ recipes the one-pass moments (null unless that pass is used) and the
     * calibration windows (what the sequential pass runs through the quantized layers).
     */
    private record Calibrated(CalibrationStats stats, Hessians hessians, List<int[]> windows) {
    }

    private OptModel quantize(OptModel model, QuantRecipe recipe, Calibrated calibrated) {
        QuantPlan plan = QuantPlanner.plan(recipe, calibrated.stats(), alpha, clusters);
        if (gptqPass == GptqPass.SEQUENTIAL) {
            SequentialGptq.RangeSearch rangeSearch = actClipOption.equals("search") && recipe.gptq() && recipe.reorders()
                    ? new SequentialGptq.RangeSearch(new ClusterRangeSearch(recipe.lowBit().activationBits(),
                    ClusterRangeSearch.DEFAULT_RATIOS), actClipRows) : null;
            return RecipeApplier.apply(model, plan, calibrated.windows(), rangeSearch,
                    progress("gptq " + recipe.name(), "layers"));
        }
        return RecipeApplier.apply(model, plan, calibrated.hessians());
    }

    private Calibrated calibrationFor(List<QuantRecipe> recipes, OptModel model, OptTokenizer tokenizer, PrintWriter out) {
        boolean gptq = recipes.stream().anyMatch(QuantRecipe::gptq);
        if (calibrationIn != null) {
            if (gptq) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--calibration holds activation ranges "
                        + "only; GPTQ recipes (" + String.join(", ", recipes.stream().filter(QuantRecipe::gptq)
                        .map(QuantRecipe::name).toList()) + ") need the calibration inputs themselves: calibrate again "
                        + "(drop --calibration)");
            }
            CalibrationStats stats = CalibrationStats.load(calibrationIn);
            out.printf("calibration: loaded %s (%d sequences × %d tokens of %s)%n", calibrationIn,
                    stats.source().sequences(), stats.source().seqLen(), stats.source().text());
            return new Calibrated(stats, null, null);
        }
        boolean needed = calibrationOut != null || recipes.stream().anyMatch(QuantRecipe::needsCalibration);
        if (!needed) {
            return new Calibrated(null, null, null);
        }
        boolean onePass = gptq && (gptqPass == GptqPass.ONE_PASS || stages > 1 || !linkCodecs.isEmpty());
        HessianCollector moments = onePass ? new HessianCollector() : null;
        Path source = calibText != null ? calibText : text;
        if (calibText == null) {
            out.println("calibration: no --calib-text, calibrating on the evaluation text itself");
        }
        int[] calibTokens = tokenizer.encodeWithoutSpecialTokens(readText(source));
        long start = System.nanoTime();
        CalibrationStats stats = Calibration.run(model, calibTokens, calibSequences, calibSeqLen,
                source.getFileName().toString(), progress("calibrate", "sequences"), moments, rangeEstimator());
        out.printf("calibration: %d sequences × %d tokens of %s (asked for %d), %s ranges, %.1f s%n",
                stats.source().sequences(), calibSeqLen, source.getFileName(), calibSequences, actRanges,
                (System.nanoTime() - start) / 1e9);
        if (calibrationOut != null) {
            stats.save(calibrationOut);
            out.printf("calibration: saved to %s%n", calibrationOut);
        }
        out.flush();
        return new Calibrated(stats, moments == null ? null : moments.hessians(),
                gptq ? TokenWindows.split(calibTokens, calibSeqLen, calibSequences) : null);
    }

    private RangeEstimator rangeEstimator() {
        try {
            return RangeEstimator.parse(actRanges, "--act-ranges");
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
    }

    private Progress progress(String label, String unit) {
        return progressOptions.progress(label, unit);
    }

    static void printTable(List<Row> rows, PrintWriter out) {
        Double baseline = rows.stream().filter(Row::baseline)
                .map(r -> r.result().perplexity()).findFirst().orElse(null);
        out.println();
        out.println("| recipe | perplexity | Δ vs fp32 | linear MiB | windows | tokens | seconds |");
        out.println("|---|---:|---:|---:|---:|---:|---:|");
        for (Row row : rows) {
            Perplexity.Result r = row.result();
            out.printf("| %s | %.3f | %s | %.3f | %d | %d | %.1f |%n", row.name(), r.perplexity(),
                    baseline == null ? "—" : String.format("%+.2f %%", delta(r.perplexity(), baseline)),
                    row.linearBytes() / (1024.0 * 1024.0), r.windows(), r.predictedTokens(), r.seconds());
        }
        out.println();
    }

    private static double delta(double perplexity, double baseline) {
        return (perplexity / baseline - 1) * 100;
    }

    private void writeJson(Path directory, int textTokens, CalibrationStats stats, List<Row> rows) {
        ObjectMapper mapper = JsonFiles.mapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("model", directory.toString());
        root.put("text", text.toString());
        root.put("textTokens", textTokens);
        root.put("seqLen", seqLen);
        root.put("maxWindows", maxWindows);
        root.put("alpha", alpha);
        root.put("clusters", clusters);
        root.put("weights", weightGrid);
        root.put("biasCorrection", biasCorrectionOption);
        root.put("actClip", actClipOption);
        if (actClipOption.equals("search")) {
            root.put("actClipRows", actClipRows);
        }
        if (stats != null) {
            ObjectNode calibration = root.putObject("calibration");
            calibration.put("ranges", stats.source().ranges() == null ? "min-max" : stats.source().ranges().key());
            calibration.put("text", stats.source().text());
            calibration.put("sequences", stats.source().sequences());
            calibration.put("seqLen", stats.source().seqLen());
        }
        Double baseline = rows.stream().filter(Row::baseline)
                .map(r -> r.result().perplexity()).findFirst().orElse(null);
        ArrayNode results = root.putArray("results");
        for (Row row : rows) {
            Perplexity.Result r = row.result();
            ObjectNode entry = results.addObject();
            entry.put("recipe", row.name());
            entry.put("kv", row.kv().optionName());
            entry.put("perplexity", r.perplexity());
            entry.put("meanNll", r.meanNll());
            if (baseline != null) {
                entry.put("deltaPercent", delta(r.perplexity(), baseline));
            }
            entry.put("linearBytes", row.linearBytes());
            entry.put("windows", r.windows());
            entry.put("tokens", r.predictedTokens());
            entry.put("seconds", r.seconds());
        }
        JsonFiles.write(json, root);
    }

    private static String readText(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }
}
