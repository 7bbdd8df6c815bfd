package io.bitrelay.deploy;

import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptPresets;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import io.bitrelay.runtime.tensor.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** Writes a synthetic Hugging Face OPT checkpoint of a preset or custom shape. */
@Command(name = "synth", mixinStandardHelpOptions = true,
        description = "Write a synthetic OPT checkpoint (config.json, safetensors, tokenizer.json) with deterministic weights.")
public final class SynthCommand implements Runnable {
    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Directory to write.")
    Path out;

    @Option(names = "--preset", defaultValue = "opt-tiny", description = "Base shape (default: ${DEFAULT-VALUE}); the flags below override it.")
    String preset;

    @Option(names = "--hidden") Integer hidden;
    @Option(names = "--layers") Integer layers;
    @Option(names = "--heads") Integer heads;
    @Option(names = "--ffn") Integer ffn;
    @Option(names = "--vocab") Integer vocab;
    @Option(names = "--max-positions") Integer maxPositions;
    @Option(names = "--word-embed-proj-dim", description = "Embedding width; differs from --hidden → project_in/out.")
    Integer wordEmbedProjDim;
    @Option(names = "--post-layer-norm", description = "do_layer_norm_before=false, as opt-350m.")
    boolean postLayerNorm;

    @Option(names = "--outliers", description = "Plant outlier channels (scaled 20–100x, shifted ±5–20) at every LayerNorm.")
    boolean outliers;

    @Option(names = "--dtype", defaultValue = "fp16", description = "Storage: fp32, fp16, bf16 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--seed", defaultValue = "1234") long seed;

    @Option(names = "--shard-mb", defaultValue = "0", description = "Split into shards of about this many MB (fractions allowed) with an index; 0 = one file.")
    double shardMegabytes;

    @Override
    public void run() {
        OptConfig base = OptPresets.get(preset);
        int hiddenSize = hidden != null ? hidden : base.hiddenSize();
        OptConfig config = new OptConfig(
                vocab != null ? vocab : base.vocabSize(),
                hiddenSize,
                layers != null ? layers : base.numLayers(),
                heads != null ? heads : base.numHeads(),
                ffn != null ? ffn : base.ffnDim(),
                maxPositions != null ? maxPositions : base.maxPositions(),
                wordEmbedProjDim != null ? wordEmbedProjDim : (hidden != null ? hiddenSize : base.wordEmbedProjDim()),
                !postLayerNorm && base.doLayerNormBefore(),
                false, base.enableBias(), base.bosTokenId(), base.eosTokenId(), base.padTokenId(), "float16");
        SyntheticOptions options = SyntheticOptions.defaults().withSeed(seed).withOutliers(outliers)
                .withStorage(DType.fromUserName(dtype)).withShardBytes((long) (shardMegabytes * 1024 * 1024));
        long start = System.nanoTime();
        SyntheticCheckpointWriter.write(out, config, options);
        System.out.printf("wrote %s: %d layers, hidden %d, heads %d, ffn %d, vocab %d, %s%s in %.1f s%n", out,
                config.numLayers(), config.hiddenSize(), config.numHeads(), config.ffnDim(), config.vocabSize(),
                options.storage(), outliers ? ", outliers" : "", (System.nanoTime() - start) / 1e9);
    }
}
