package io.bitrelay.deploy.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.cuda.CudaContext;
import io.bitrelay.runtime.cuda.CudaEvent;
import io.bitrelay.runtime.cuda.CudaProbe;
import io.bitrelay.runtime.cuda.CudaSettings;
import io.bitrelay.runtime.cuda.CudaUnavailableException;
import io.bitrelay.runtime.cuda.cublaslt.GemmSearch;
import io.bitrelay.runtime.cuda.kernels.KvCacheFormat;
import io.bitrelay.runtime.cuda.stage.GpuChunk;
import io.bitrelay.runtime.cuda.stage.GpuSequence;
import io.bitrelay.runtime.cuda.stage.GpuStage;
import io.bitrelay.runtime.cuda.stage.StageRecipe;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptPresets;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * A stack of OPT-175B-shaped decoder layers on one GPU through the stage engine ({@link GpuStage}), weights
 * made on the device: decode steps at several batch sizes over a context already in the KV cache, and
 * prefills, per recipe; CUDA-event timed (warm-up, then the median), plus the device memory each layer takes
 * and how many OPT-175B layers fit a GPU. deploy/bench/torch_opt_layers.py is the PyTorch peer and
 * deploy/bench/gpu-layers.sh runs both and merges them.
 */
@Command(name = "gpu-layers", mixinStandardHelpOptions = true,
        description = "OPT decoder layers on one GPU (stage engine): decode/prefill tokens/s and memory per recipe.")
public final class GpuLayersBench implements Callable<Integer> {
    @Option(names = "--preset", defaultValue = "opt-175b", description = "Layer shape (default: ${DEFAULT-VALUE}).")
    String preset;

    @Option(names = "--layers", defaultValue = "16", description = "Layers in the stack (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--recipes", split = ",", defaultValue = "fp16,w8a8", description = "fp16, w8a8 (default: ${DEFAULT-VALUE}).")
    List<String> recipes;

    @Option(names = "--batches", split = ",", defaultValue = "1,16,64", description = "Decode batch sizes (default: ${DEFAULT-VALUE}).")
    List<Integer> batches;

    @Option(names = "--kv", defaultValue = "fp16", description = "KV cache of the stage: fp16 or int8 (default: ${DEFAULT-VALUE}).")
    String kv;

    @Option(names = "--context", defaultValue = "512", description = "Tokens already in each KV cache at decode (default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--prefill", split = ",", defaultValue = "512,2048", description = "Prefill lengths, one sequence (default: ${DEFAULT-VALUE}).")
    List<Integer> prefills;

    @Option(names = "--graphs", defaultValue = "both",
            description = "Decode steps through CUDA graphs (on), kernel by kernel (off), or both side by side, the kernel-by-kernel "
                    + "ones as phase decode-eager (default: ${DEFAULT-VALUE}).")
    String graphs;

    @Option(names = "--warmup", defaultValue = "3", description = "Untimed steps first (tunes the GEMMs) (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--runs", defaultValue = "10", description = "Timed steps, median reported (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--headroom-gb", defaultValue = "16",
            description = "GB per GPU kept for KV cache, activations and workspace in the fits table (default: ${DEFAULT-VALUE}).")
    double headroomGb;

    @Option(names = "--device", defaultValue = "0", description = "CUDA device ordinal (default: ${DEFAULT-VALUE}).")
    int device;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Mixin
    GemmSearchOptions gemmSearchOptions;

    private record Timing(String phase, int batch, int tokensPerSequence, double medianMillis) {
        double tokensPerSecond(int stepTokens) {
            return stepTokens / (medianMillis / 1000.0);
        }
    }

    private record RecipeResult(StageRecipe recipe, long measuredBytes, long weightBytes, long activationBytes,
                                List<Timing> timings) {
    }

    @Override
    public Integer call() throws IOException {
        CudaProbe probe = CudaProbe.get();
        if (!probe.available()) {
            System.out.println("bench gpu-layers: " + probe.reason());
            return 2;
        }
        if (!List.of("on", "off", "both").contains(graphs)) {
            System.out.println("bench gpu-layers: --graphs takes on, off or both, got " + graphs);
            return 2;
        }
        CudaSettings settings;
        try {
            settings = gemmSearchOptions.settings();
        } catch (IllegalArgumentException e) {
            System.out.println("bench gpu-layers: " + e.getMessage());
            return 2;
        }
        GemmSearch search = settings.gemmSearch();
        KvCacheFormat kvFormat;
        try {
            kvFormat = KvCacheFormat.parse(kv);
        } catch (IllegalArgumentException e) {
            System.out.println("bench gpu-layers: --kv: " + e.getMessage());
            return 2;
        }
        OptConfig config = OptPresets.get(preset);
        int maxPrefill = prefills.stream().mapToInt(Integer::intValue).max().orElse(1);
        int maxBatch = batches.stream().mapToInt(Integer::intValue).max().orElse(1);
        int decodeCapacity = context + warmup + runs + 1;
        List<RecipeResult> results = new ArrayList<>();
        String gpu;
        try (CudaContext probeContext = CudaContext.open(device)) {
            gpu = probeContext.device().describe();
            System.out.printf("GPU: %s; %d x %s layers (hidden %d, %d heads, ffn %d); decode context %d; median of %d after %d;"
                            + " GEMM search %s; %s KV cache%n", gpu, layers, preset, config.hiddenSize(), config.numHeads(),
                    config.ffnDim(), context, runs, warmup, search.label(), kvFormat.label());
            for (String name : recipes) {
                StageRecipe recipe = StageRecipe.parse(name);
                long freeBefore = probeContext.memoryInfo()[0];
                try (GpuStage stage = GpuStage.random(device, settings, config, recipe, kvFormat, layers,
                        Math.max(maxPrefill, maxBatch), Math.max(maxPrefill, decodeCapacity), 17)) {
                    long measured = freeBefore - probeContext.memoryInfo()[0];
                    System.out.printf("%s: device memory %.2f GB measured for the stage (%.3f GB/layer of weights requested, "
                            + "%.2f GB activation buffers)%n", recipe.label(), measured / 1e9, stage.weightBytes() / 1e9 / layers,
                            stage.activationBytes() / 1e9);
                    List<Timing> timings = new ArrayList<>();
                    if (!graphs.equals("off")) {
                        stage.useDecodeGraphs(true);
                        for (int batch : batches) {
                            timings.add(decode(stage, batch, decodeCapacity, "decode"));
                        }
                        System.out.printf("  %s decode graphs: %s%n", recipe.label(), stage.decodeGraphsStatus());
                    }
                    if (!graphs.equals("on")) {
                        stage.useDecodeGraphs(false);
                        for (int batch : batches) {
                            timings.add(decode(stage, batch, decodeCapacity, graphs.equals("off") ? "decode" : "decode-eager"));
                        }
                    }
                    for (int length : prefills) {
                        timings.add(prefill(stage, length));
                    }
                    results.add(new RecipeResult(recipe, measured, stage.weightBytes(), stage.activationBytes(), timings));
                }
            }
        } catch (CudaUnavailableException e) {
            System.out.println("bench gpu-layers: " + e.getMessage());
            return 2;
        }
        printTable(results);
        List<ObjectNode> fits = fits(config, results);
        if (json != null) {
            writeJson(gpu, config, results, fits);
        }
        return 0;
    }

    private Timing decode(GpuStage stage, int batch, int capacity, String phase) {
        List<GpuSequence> sequences = new ArrayList<>();
        try {
            List<GpuChunk> chunks = new ArrayList<>();
            for (int s = 0; s < batch; s++) {
                GpuSequence sequence = stage.newSequence(capacity);
                sequences.add(sequence);
                stage.fillRandomContext(sequence, context, 100 + s);
                chunks.add(new GpuChunk(sequence, 1));
            }
            loadHidden(stage, chunks, batch);
            double millis = time(stage, chunks);
            Timing timing = new Timing(phase, batch, 1, millis);
            report(stage, timing, batch);
            return timing;
        } finally {
            sequences.forEach(stage::release);
        }
    }

    private Timing prefill(GpuStage stage, int length) {
        // every run needs an empty cache: a fresh sequence per step, allocated outside the timed region
        double[] millis = new double[runs];
        for (int i = -warmup; i < runs; i++) {
            GpuSequence sequence = stage.newSequence(length);
            try {
                List<GpuChunk> chunks = List.of(new GpuChunk(sequence, length));
                if (i == -warmup) {
                    loadHidden(stage, chunks, length); // the first warm-up step
                    continue;
                }
                double step = timeOnce(stage, chunks);
                if (i >= 0) {
                    millis[i] = step;
                }
            } finally {
                stage.release(sequence);
            }
        }
        Arrays.sort(millis);
        Timing timing = new Timing("prefill", 1, length, millis[runs / 2]);
        report(stage, timing, length);
        return timing;
    }

    /** Puts random hidden states on the device through a real step (later steps keep transforming them). */
    private void loadHidden(GpuStage stage, List<GpuChunk> chunks, int rows) {
        int hidden = stage.config().hiddenSize();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate((long) rows * hidden * Float.BYTES, 64);
            SplittableRandom random = new SplittableRandom(5);
            for (long i = 0; i < (long) rows * hidden; i++) {
                host.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
            }
            stage.runLayers(chunks, host);
        }
    }

    private double time(GpuStage stage, List<GpuChunk> chunks) {
        for (int i = 1; i < warmup; i++) { // loadHidden was the first warm-up step
            stage.enqueueLayers(chunks);
        }
        double[] millis = new double[runs];
        for (int i = 0; i < runs; i++) {
            millis[i] = timeOnce(stage, chunks);
        }
        Arrays.sort(millis);
        return millis[runs / 2];
    }

    private static double timeOnce(GpuStage stage, List<GpuChunk> chunks) {
        try (CudaEvent start = CudaEvent.create(); CudaEvent end = CudaEvent.create()) {
            start.record(stage.stream());
            stage.enqueueLayers(chunks);
            end.record(stage.stream());
            return CudaEvent.elapsedMillis(start, end);
        }
    }

    private void report(GpuStage stage, Timing t, int stepTokens) {
        System.out.printf("  %-5s %-7s batch %3d x %4d tokens: %9.3f ms/step  %8.3f ms/layer  %10.1f tokens/s%n",
                stage.recipe().label(), t.phase(), t.batch(), t.tokensPerSequence(), t.medianMillis(),
                t.medianMillis() / layers, t.tokensPerSecond(stepTokens));
    }

    private void printTable(List<RecipeResult> results) {
        System.out.println();
        System.out.println("| recipe | phase | batch x tokens | ms/layer | tokens/s (" + layers + " layers) |");
        System.out.println("|---|---|---|---:|---:|");
        for (RecipeResult r : results) {
            for (Timing t : r.timings()) {
                System.out.printf("| %s | %s | %d x %d | %.3f | %.1f |%n", r.recipe().label(), t.phase(), t.batch(),
                        t.tokensPerSequence(), t.medianMillis() / layers, t.tokensPerSecond(t.batch() * t.tokensPerSequence()));
            }
        }
    }

    /**
     * OPT-175B layers per GPU: FP16 and W8A8 from the measured bytes per layer (stage total minus its activation
     * buffers and workspace, over the layer count); W4 computed: 0.5 byte per weight, an FP16 scale per group
     * of 128 weights, FP32 biases and LayerNorms.
     */
    private List<ObjectNode> fits(OptConfig config, List<RecipeResult> results) {
        ObjectMapper mapper = new ObjectMapper();
        List<ObjectNode> rows = new ArrayList<>();
        long h = config.hiddenSize();
        long f = config.ffnDim();
        long weights = 4 * h * h + 2 * h * f;
        long small = (3 * h + h + f + h) * Float.BYTES + 4 * h * Float.BYTES;
        List<Object[]> perLayer = new ArrayList<>();
        for (RecipeResult r : results) {
            long layerBytes = (r.measuredBytes() - r.activationBytes() - (32L << 20)) / layers;
            perLayer.add(new Object[] {r.recipe().label() + " (measured)", layerBytes});
        }
        perLayer.add(new Object[] {"w4 (computed)", weights / 2 + weights / 128 * 2 + small});
        System.out.println();
        System.out.printf("What fits (%s layers of %d; %.0f GB per GPU kept for KV cache, activations, workspace):%n", preset,
                config.numLayers(), headroomGb);
        System.out.println("| weights | GB/layer | layers on 143 GB | GPUs for all | layers on 80 GB | GPUs for all |");
        System.out.println("|---|---:|---:|---:|---:|---:|");
        for (Object[] entry : perLayer) {
            long bytes = (long) entry[1];
            int on143 = (int) Math.floor((143e9 - headroomGb * 1e9) / bytes);
            int on80 = (int) Math.floor((80e9 - headroomGb * 1e9) / bytes);
            System.out.printf("| %s | %.3f | %d | %d | %d | %d |%n", entry[0], bytes / 1e9, on143,
                    ceilDiv(config.numLayers(), on143), on80, ceilDiv(config.numLayers(), on80));
            ObjectNode row = mapper.createObjectNode();
            row.put("weights", (String) entry[0]);
            row.put("bytesPerLayer", bytes);
            row.put("layersOn143GB", on143);
            row.put("gpusFor" + config.numLayers() + "LayersOn143GB", ceilDiv(config.numLayers(), on143));
            row.put("layersOn80GB", on80);
            row.put("gpusFor" + config.numLayers() + "LayersOn80GB", ceilDiv(config.numLayers(), on80));
            rows.add(row);
        }
        return rows;
    }

    private static int ceilDiv(int a, int b) {
        return b <= 0 ? -1 : (a + b - 1) / b;
    }

    private void writeJson(String gpu, OptConfig config, List<RecipeResult> results, List<ObjectNode> fits) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("gpu", gpu);
        root.put("preset", preset);
        root.put("layers", layers);
        root.put("hidden", config.hiddenSize());
        root.put("heads", config.numHeads());
        root.put("ffn", config.ffnDim());
        root.put("context", context);
        root.put("kvCache", kv);
        root.put("gemmSearch", gemmSearchOptions.search().label());
        root.put("warmup", warmup);
        root.put("runs", runs);
        root.put("headroomGB", headroomGb);
        ArrayNode array = root.putArray("results");
        for (RecipeResult r : results) {
            for (Timing t : r.timings()) {
                ObjectNode row = array.addObject();
                row.put("impl", "bitrelay-" + r.recipe().label());
                row.put("phase", t.phase());
                row.put("batch", t.batch());
                row.put("tokens", t.tokensPerSequence());
                row.put("context", t.phase().startsWith("decode") ? context : 0);
                row.put("msPerStep", t.medianMillis());
                row.put("msPerLayer", t.medianMillis() / layers);
                row.put("tokensPerSecond", t.tokensPerSecond(t.batch() * t.tokensPerSequence()));
            }
        }
        ArrayNode memory = root.putArray("memory");
        for (RecipeResult r : results) {
            ObjectNode row = memory.addObject();
            row.put("recipe", r.recipe().label());
            row.put("measuredStageBytes", r.measuredBytes());
            row.put("activationBytes", r.activationBytes());
            row.put("weightBytesRequested", r.weightBytes());
            row.put("measuredBytesPerLayer", (r.measuredBytes() - r.activationBytes() - (32L << 20)) / layers);
        }
        ArrayNode fitsArray = root.putArray("fits");
        fits.forEach(fitsArray::add);
        mapper.writerWithDefaultPrettyPrinter().writeValue(json.toFile(), root);
    }
}
