package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.ActivationObserver;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.OptWeights;
import io.bitrelay.runtime.model.opt.SequenceChunk;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * A GPTQ recipe built the way the GPTQ paper's code builds it: one decoder layer at a time, each layer's
 * moments gathered from the inputs that the already-quantized layers before it produce, so every layer
 * compensates for the error upstream of it, and only one layer's moments exist at a time (at OPT-175B one
 * layer's are 23 GB; all 48 of a stage's would not fit anywhere). The calibration inputs of the stage's first
 * layer are kept, one segment per sequence, and advanced through each quantized layer in place.
 *
 * <p>Activation ranges, clusters and channel centres still come from the plan (the FP32 calibration pass);
 * only the weight rounding sees the quantized prefix.
 */
public final class SequentialGptq {
    private SequentialGptq() {
    }

    /**
     * In-process: embeds {@code sequences} (the calibration windows) with {@code base}, which must own the
     * embeddings, and quantizes every layer.
     */
    public static OptModel fromWindows(OptModel base, QuantPlan plan, List<int[]> sequences, Progress progress) {
        return fromWindows(base, plan, sequences, null, progress);
    }

    /**
     * As {@link #fromWindows(OptModel, QuantPlan, List, Progress)}; with a {@code rangeSearch} (null: none) each
     * layer's cluster ranges are searched on that layer's inputs as the quantized layers before it produce them.
     */
    public static OptModel fromWindows(OptModel base, QuantPlan plan, List<int[]> sequences, RangeSearch rangeSearch,
                                       Progress progress) {
        if (!base.range().ownsEmbeddings()) {
            throw new IllegalArgumentException("calibration windows start at the embeddings; this model holds " + base.range());
        }
        try (Arena inputs = Arena.ofShared()) {
            List<MemorySegment> hidden = new ArrayList<>();
            for (int[] sequence : sequences) {
                try (KvCache cache = base.newCache()) {
                    hidden.add(base.embed(List.of(new SequenceChunk(sequence, cache)), inputs));
                }
            }
            return fromInputs(base, plan, hidden, rangeSearch, progress);
        }
    }

    /** A {@link ClusterRangeSearch} and the calibration rows per (layer, site) it measures on. */
    public record RangeSearch(ClusterRangeSearch search, int rows) {
        public RangeSearch {
            if (rows < 1) {
                throw new IllegalArgumentException("the range search needs at least 1 calibration row per site, got " + rows);
            }
        }
    }

    /**
     * @param inputs the stage's input rows per calibration sequence, (tokens, hidden) FP32, each a whole sequence
     *               from position 0; overwritten, layer by layer, with what the quantized layers make of them
     *               (up to the last layer's input)
     * @return the quantized stage; closing it frees what the recipe allocated ({@code base} must stay open)
     */
    public static OptModel fromInputs(OptModel base, QuantPlan plan, List<MemorySegment> inputs, Progress progress) {
        return fromInputs(base, plan, inputs, null, progress);
    }

    /**
     * As {@link #fromInputs(OptModel, QuantPlan, List, Progress)}; with a {@code rangeSearch} (RPTQ recipes; null:
     * none) each layer's cluster ranges are chosen on a sample of that layer's inputs before it is rounded, so they
     * fit the activations the quantized prefix really produces.
     */
    public static OptModel fromInputs(OptModel base, QuantPlan plan, List<MemorySegment> inputs, RangeSearch rangeSearch,
                                      Progress progress) {
        if (rangeSearch != null && !plan.recipe().reorders()) {
            throw new IllegalArgumentException("recipe " + plan.recipe().name() + " has no activation clusters to search "
                    + "ranges for");
        }
        if (!plan.recipe().gptq()) {
            throw new IllegalArgumentException("recipe " + plan.recipe().name() + " does not round with GPTQ");
        }
        if (inputs.isEmpty()) {
            throw new IllegalArgumentException("GPTQ needs at least one calibration sequence");
        }
        int width = base.config().hiddenSize();
        LayerWeights[] fp32 = base.weights().layers();
        LayerWeights[] quantized = new LayerWeights[fp32.length];
        Arena arena = Arena.ofShared();
        try {
            for (int local = 0; local < fp32.length; local++) {
                OptModel layer = base.layerSlice(local);
                HessianCollector moments = new HessianCollector();
                ActivationSampler sampler = rangeSearch == null ? null : new ActivationSampler(rangeSearch.rows());
                ActivationObserver observer = sampler == null ? moments : moments.andThen(sampler);
                try (Arena scratch = Arena.ofShared()) {
                    for (MemorySegment x : inputs) { // the FP32 layer on a copy: only its activations are wanted
                        MemorySegment copy = scratch.allocate(x.byteSize(), 64);
                        copy.copyFrom(x);
                        run(layer, copy, width, observer);
                    }
                }
                QuantPlan layerPlan = rangeSearch == null ? plan : rangeSearch.search().refineLayer(plan,
                        layer.range().first(), fp32[local], sampler);
                OptWeights rounded = RecipeApplier.quantizedWeights(layer.weights(), layerPlan, moments.hessians(), arena);
                if (local + 1 < fp32.length) { // the next layer's inputs; the last layer's outputs are not needed
                    OptModel quantizedLayer = layer.derive(rounded, null);
                    for (MemorySegment x : inputs) {
                        run(quantizedLayer, x, width, null);
                    }
                }
                quantized[local] = rounded.layers()[0];
                progress.update(local + 1, fp32.length);
            }
            progress.finish();
            return base.derive(base.weights().withLayers(quantized), arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** One whole sequence through a one-layer model, in place, on a cache of its own. */
    private static void run(OptModel layer, MemorySegment x, int width, ActivationObserver observer) {
        int rows = Math.toIntExact(x.byteSize() / ((long) width * Float.BYTES));
        try (Arena step = Arena.ofShared(); KvCache cache = layer.newCache()) {
            layer.runLayers(List.of(new SequenceChunk(new int[rows], cache)), x, step, observer);
        }
    }
}
