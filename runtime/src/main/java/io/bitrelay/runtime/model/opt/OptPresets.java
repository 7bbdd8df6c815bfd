package io.bitrelay.runtime.model.opt;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;

import java.util.List;
import java.util.Locale;

/** The OPT shapes named in configs/models.conf (opt-125m … opt-175b and small test shapes). */
public final class OptPresets {
    private static final String RESOURCE = "configs/models.conf";
    private static final Config MODELS = ConfigFactory.parseResources(OptPresets.class.getClassLoader(), RESOURCE)
            .resolve().getConfig("bitrelay.models");

    private OptPresets() {
    }

    public static List<String> names() {
        return MODELS.getConfig("presets").root().keySet().stream().sorted().toList();
    }

    /** @param name a preset name, with or without the "opt-" prefix ("175b" and "opt-175b" both work) */
    public static OptConfig get(String name) {
        String key = name.toLowerCase(Locale.ROOT);
        if (!key.startsWith("opt-")) {
            key = "opt-" + key;
        }
        if (!MODELS.getConfig("presets").root().containsKey(key)) {
            throw new IllegalArgumentException("unknown model preset '" + name + "' (known: " + String.join(", ", names()) + ")");
        }
        Config preset = MODELS.getConfig("presets").getConfig("\"" + key + "\"").withFallback(MODELS.getConfig("defaults"));
        try {
            int hidden = preset.getInt("hidden-size");
            return new OptConfig(
                    preset.getInt("vocab-size"),
                    hidden,
                    preset.getInt("layers"),
                    preset.getInt("heads"),
                    preset.getInt("ffn-dim"),
                    preset.getInt("max-positions"),
                    preset.hasPath("word-embed-proj-dim") ? preset.getInt("word-embed-proj-dim") : hidden,
                    preset.getBoolean("do-layer-norm-before"),
                    false,
                    preset.getBoolean("enable-bias"),
                    preset.getInt("bos-token-id"),
                    preset.getInt("eos-token-id"),
                    preset.getInt("pad-token-id"),
                    "float16");
        } catch (ConfigException e) {
            throw new IllegalArgumentException(RESOURCE + ": preset " + key + ": " + e.getMessage(), e);
        }
    }
}
