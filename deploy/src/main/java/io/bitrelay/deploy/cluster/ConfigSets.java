package io.bitrelay.deploy.cluster;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The {@code --set KEY=VALUE} flags of the commands that start nodes, as config overrides. */
public final class ConfigSets {
    private ConfigSets() {
    }

    /** Each KEY=VALUE as an entry, later ones winning; a flag without a key names itself in the error. */
    public static Map<String, Object> parse(List<String> sets) {
        Map<String, Object> settings = new LinkedHashMap<>();
        for (String set : sets) {
            int equals = set.indexOf('=');
            if (equals <= 0) {
                throw new IllegalArgumentException("--set wants KEY=VALUE, got '" + set + "'");
            }
            settings.put(set.substring(0, equals).strip(), set.substring(equals + 1));
        }
        return settings;
    }
}
