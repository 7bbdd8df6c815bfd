package io.bitrelay.deploy.cluster;

import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** The flags that choose the recipe a cluster's stages serve (bitrelay.quantization), shared by demo, cluster and node. */
public final class QuantizationOptions {
    @Option(names = "--recipe", paramLabel = "NAME",
            description = "Recipe of the stages: fp32, w8a8-naive, w8a8-pertoken, w8a8-smoothquant, w8a8-smoothquant-static "
                    + "(default: bitrelay.quantization.recipe, fp32).")
    String recipe;

    @Option(names = "--alpha", paramLabel = "A", description = "SmoothQuant migration strength α (default: 0.5).")
    Float alpha;

    @Option(names = "--kv-cache", paramLabel = "P",
            description = "KV cache precision of every stage: fp32, int8, int4, int3 (default: bitrelay.quantization.kv-cache, fp32).")
    String kvCache;

    @Option(names = "--calib-text", paramLabel = "FILE",
            description = "Calibration text, tokenized with the model's tokenizer (default: random token ids).")
    Path calibText;

    @Option(names = "--calib-sequences", paramLabel = "N", description = "Calibration sequences (default: 128).")
    Integer calibSequences;

    @Option(names = "--calib-tokens", paramLabel = "N", description = "Tokens per calibration sequence (default: 512).")
    Integer calibTokens;

    @Option(names = "--quant-store", paramLabel = "DIR",
            description = "Quantization store: a later start with the same model, recipe (and recipe options), calibration "
                    + "and placement loads the saved stages instead of calibrating; 'none' = off (default for demo/cluster: "
                    + "~/.cache/bitrelay/quant/<model>, for node: bitrelay.quantization.store).")
    String store;

    /**
     * The config overrides these flags make.
     *
     * @param defaultStore the store directory to use when the flag is not given, or null for the config's
     */
    public Map<String, Object> settings(Path defaultStore) {
        Map<String, Object> settings = new HashMap<>();
        if (recipe != null) {
            settings.put("bitrelay.quantization.recipe", recipe);
        }
        if (alpha != null) {
            settings.put("bitrelay.quantization.alpha", alpha);
        }
        if (kvCache != null) {
            settings.put("bitrelay.quantization.kv-cache", io.bitrelay.runtime.model.opt.KvPrecision.parse(kvCache).optionName());
        }
        if (calibText != null) {
            settings.put("bitrelay.quantization.calibration.text", calibText.toAbsolutePath().toString());
        }
        if (calibSequences != null) {
            settings.put("bitrelay.quantization.calibration.sequences", calibSequences);
        }
        if (calibTokens != null) {
            settings.put("bitrelay.quantization.calibration.tokens", calibTokens);
        }
        if ("none".equals(store)) {
            settings.put("bitrelay.quantization.store", "");
        } else if (store != null) {
            settings.put("bitrelay.quantization.store", Path.of(store).toAbsolutePath().toString());
        } else if (defaultStore != null) {
            settings.put("bitrelay.quantization.store", defaultStore.toAbsolutePath().toString());
        }
        return settings;
    }

    /** ~/.cache/bitrelay/quant/&lt;checkpoint directory name&gt; (next to the synthetic models' cache). */
    public static Path defaultStore(Path checkpoint) {
        Path cache = io.bitrelay.runtime.synthetic.EmbeddedModels.defaultCacheRoot().toAbsolutePath();
        Path root = cache.getParent() != null ? cache.getParent().resolve("quant") : Path.of("quant");
        return root.resolve(checkpoint.toAbsolutePath().normalize().getFileName().toString());
    }
}
