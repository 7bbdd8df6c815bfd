package io.bitrelay.deploy;

import io.bitrelay.runtime.eval.Perplexity;
import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.eval.TokenWindows;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.quant.CalibrationCollector;
import io.bitrelay.runtime.quant.CalibrationStats;
import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.quant.ChannelStats;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.quant.Hessians;
import io.bitrelay.runtime.quant.QuantPlanner;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.RecipeApplier;
import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;

import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;

/**
 * Perplexity through a pipeline in one process: the layers split into S contiguous ranges as the cluster
 * places them, each range a stage built with the recipe, and between ranges the hidden state goes through
 * the real link path — {@link LinkFrameWriter} encodes a frame with the link codec, {@link LinkFrameReader}
 * checks and decodes it. RPTQ link plans are made as the coordinator makes them: the per-channel range of
 * each stage's output (STAGE_OUTPUT) over calibration sequences run through the quantized stages, clustered
 * by {@link ChannelClustering}. The wire ratio is the frames' bytes against FP16 frames of the same rows.
 */
final class StagedEval {
    /** The hidden state passes between stages untouched (the baseline of the links). */
    static final String NO_LINKS = "none";

    /** One (recipe, link codec) outcome. */
    record Row(String recipe, String link, Perplexity.Result result, double wireRatio) {
    }

    private StagedEval() {
    }

    /** Equal contiguous layer ranges, the first ones one layer longer when the layers do not divide evenly. */
    static List<LayerRange> split(int layers, int stages) {
        if (stages < 1 || stages > layers) {
            throw new IllegalArgumentException("--stages must be in [1, " + layers + "], got " + stages);
        }
        List<LayerRange> ranges = new ArrayList<>();
        int first = 0;
        for (int s = 0; s < stages; s++) {
            int count = layers / stages + (s < layers % stages ? 1 : 0);
            ranges.add(new LayerRange(first, first + count, layers));
            first += count;
        }
        return ranges;
    }

    static List<Row> run(Path directory, List<QuantRecipe> recipes, List<String> linkCodecs, int stageCount, CalibrationStats stats,
                         Hessians hessians, float alpha, List<int[]> linkCalibration, int[] tokens, int seqLen, int maxWindows, int clusters,
                         BiFunction<String, String, Progress> progress, PrintWriter out) {
        List<OptModel> bases = new ArrayList<>();
        List<Row> rows = new ArrayList<>();
        try {
            int layers = io.bitrelay.runtime.model.opt.OptConfig.read(directory.resolve("config.json")).numLayers();
            List<LayerRange> ranges = split(layers, stageCount);
            for (LayerRange range : ranges) {
                bases.add(OptModel.load(directory, range));
            }
            out.printf("stages: %s%n", ranges);
            out.flush();
            for (QuantRecipe recipe : recipes) {
                List<OptModel> stages = new ArrayList<>();
                try {
                    for (OptModel base : bases) {
                        stages.add(RecipeApplier.apply(base, QuantPlanner.plan(recipe, stats, alpha), hessians));
                    }
                    List<ClusterPlan> plans = needsPlans(linkCodecs) ? linkPlans(stages, linkCalibration, clusters) : null;
                    for (String linkName : linkCodecs) {
                        CodecId id = linkName.equals(NO_LINKS) ? null : CodecId.fromName(linkName);
                        String name = id == null ? NO_LINKS : id.codecName();
                        Links links = new Links(stages.size() - 1, id, plans);
                        Perplexity.Result result = evaluate(stages, links, tokens, seqLen, maxWindows,
                                progress.apply("eval " + recipe.name() + " " + name + " links", "windows"));
                        rows.add(new Row(recipe.name(), name, result, links.ratio()));
                    }
                } finally {
                    stages.forEach(OptModel::close);
                }
            }
        } finally {
            bases.forEach(OptModel::close);
        }
        return rows;
    }

    private static boolean needsPlans(List<String> codecs) {
        return codecs.stream().filter(c -> !c.equals(NO_LINKS)).map(CodecId::fromName).anyMatch(id -> id == CodecId.INT4_RPTQ || id == CodecId.INT3_RPTQ);
    }

    /** Per link: the range of the sending stage's output over the calibration sequences, clustered. */
    private static List<ClusterPlan> linkPlans(List<OptModel> stages, List<int[]> sequences, int clusters) {
        CalibrationCollector collector = new CalibrationCollector();
        for (int[] sequence : sequences) {
            List<KvCache> caches = new ArrayList<>();
            try (Arena step = Arena.ofShared()) {
                List<SequenceChunk> chunks = null;
                MemorySegment hidden = null;
                for (OptModel stage : stages) {
                    KvCache cache = stage.newCache();
                    caches.add(cache);
                    chunks = List.of(new SequenceChunk(sequence, cache));
                    if (hidden == null) {
                        hidden = stage.embed(chunks, step);
                    }
                    stage.runLayers(chunks, hidden, step, collector);
                }
            } finally {
                caches.forEach(KvCache::close);
            }
        }
        CalibrationStats measured = collector.stats(new CalibrationStats.Source("stages", "link calibration", sequences.size(), 0));
        List<ClusterPlan> plans = new ArrayList<>();
        ChannelClustering clustering = new ChannelClustering(clusters);
        for (int i = 0; i < stages.size() - 1; i++) {
            ChannelStats output = measured.get(stages.get(i).range().end() - 1, ActivationSite.STAGE_OUTPUT);
            plans.add(clustering.plan(output.min(), output.max()));
        }
        return plans;
    }

    /** The links between stages: frame writer and reader per link, and what their frames weighed. */
    private static final class Links {
        final LinkCodec codec;
        final LinkFrameWriter writer = new LinkFrameWriter();
        final List<LinkFrameReader> readers = new ArrayList<>();
        long wireBytes;
        long fp16WireBytes;
        final int count;

        Links(int count, CodecId id, List<ClusterPlan> plans) {
            this.count = count;
            boolean rptq = id == CodecId.INT4_RPTQ || id == CodecId.INT3_RPTQ;
            this.codec = rptq || id == null ? null : LinkCodecs.forId(id);
            this.id = id;
            this.plans = plans;
            for (int i = 0; i < count; i++) {
                readers.add(rptq ? new LinkFrameReader(LinkCodecs.all(plans.get(i))) : new LinkFrameReader());
            }
        }

        final CodecId id;
        final List<ClusterPlan> plans;

        LinkCodec codec(int link) {
            return codec != null ? codec : LinkCodecs.forId(id, plans.get(link));
        }

        /** Encodes {@code hidden} into a frame with link {@code link}'s codec and decodes it back in place. */
        void cross(int link, MemorySegment hidden, int rows, int width, Arena step) {
            if (id == null) {
                return;
            }
            LinkCodec c = codec(link);
            BatchLayout layout = new BatchLayout(List.of(BatchLayout.Entry.of(0, rows, 0)));
            long bytes = LinkFrame.frameBytes(c, layout.encodedBytes(), rows, width);
            MemorySegment frame = step.allocate(bytes, 64);
            long length = writer.wrap(frame).batchId(1).step(0).stages(link, link + 1).encode(c, layout, hidden, rows, width);
            wireBytes += length;
            fp16WireBytes += LinkFrame.frameBytes(LinkCodecs.forId(CodecId.FP16), layout.encodedBytes(), rows, width);
            readers.get(link).wrap(frame.asSlice(0, length)).decodeInto(hidden);
        }

        double ratio() {
            return wireBytes == 0 ? Double.NaN : (double) fp16WireBytes / wireBytes;
        }
    }

    private static Perplexity.Result evaluate(List<OptModel> stages, Links links, int[] tokens, int seqLen, int maxWindows, Progress progress) {
        List<int[]> windows = TokenWindows.split(tokens, seqLen, maxWindows);
        if (windows.isEmpty()) {
            throw new IllegalArgumentException("the text has " + tokens.length + " tokens, fewer than one window of " + seqLen);
        }
        long start = System.nanoTime();
        double nll = 0;
        long predicted = 0;
        try {
            for (int w = 0; w < windows.size(); w++) {
                nll += windowNll(stages, links, windows.get(w));
                predicted += seqLen - 1;
                progress.update(w + 1, windows.size());
            }
        } finally {
            progress.finish();
        }
        double mean = nll / predicted;
        return new Perplexity.Result(Math.exp(mean), mean, windows.size(), predicted, (System.nanoTime() - start) / 1e9);
    }

    private static double windowNll(List<OptModel> stages, Links links, int[] window) {
        List<KvCache> caches = new ArrayList<>();
        double nll = 0;
        try (Arena step = Arena.ofShared()) {
            MemorySegment hidden = null;
            int width = stages.getFirst().config().hiddenSize();
            for (int s = 0; s < stages.size(); s++) {
                OptModel stage = stages.get(s);
                KvCache cache = stage.newCache();
                caches.add(cache);
                List<SequenceChunk> chunks = List.of(new SequenceChunk(window, cache));
                if (s == 0) {
                    hidden = stage.embed(chunks, step);
                } else {
                    links.cross(s - 1, hidden, window.length, width, step);
                }
                stage.runLayers(chunks, hidden, step);
            }
            OptModel last = stages.getLast();
            for (int first = 0; first < window.length - 1; first += 64) {
                int count = Math.min(64, window.length - 1 - first);
                int[] rows = new int[count];
                for (int r = 0; r < count; r++) {
                    rows[r] = first + r;
                }
                float[][] logits;
                try (Arena block = Arena.ofShared()) {
                    logits = last.logits(hidden, rows, block);
                }
                for (int r = 0; r < count; r++) {
                    nll += Perplexity.negativeLogLikelihood(logits[r], window[first + r + 1]);
                }
            }
        } finally {
            caches.forEach(KvCache::close);
        }
        return nll;
    }

    static void printTable(List<Row> rows, Double fp32Baseline, PrintWriter out) {
        out.println();
        out.println("| recipe | links | perplexity | Δ vs fp32 (no links) | wire ratio vs FP16 | windows | tokens | seconds |");
        out.println("|---|---|---:|---:|---:|---:|---:|---:|");
        for (Row row : rows) {
            Perplexity.Result r = row.result();
            out.printf("| %s | %s | %.3f | %s | %s | %d | %d | %.1f |%n", row.recipe(), row.link(), r.perplexity(),
                    fp32Baseline == null ? "—" : String.format("%+.2f %%", (r.perplexity() / fp32Baseline - 1) * 100),
                    Double.isNaN(row.wireRatio()) ? "—" : String.format("%.2f×", row.wireRatio()), r.windows(), r.predictedTokens(), r.seconds());
        }
        out.println();
        out.flush();
    }
}
