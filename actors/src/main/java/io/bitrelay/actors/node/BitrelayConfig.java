package io.bitrelay.actors.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Assembles a node's configuration, strongest first: JVM system properties, the command line's overrides,
 * a user's --config file, configs/bitrelay.conf (our defaults), then Pekko's reference configuration.
 */
public final class BitrelayConfig {
    private static final String DEFAULTS = "configs/bitrelay.conf";

    private BitrelayConfig() {
    }

    public static Config load(Map<String, ?> overrides, Path userFile) {
        Config user = ConfigFactory.empty();
        if (userFile != null) {
            if (!Files.isRegularFile(userFile)) {
                throw new IllegalArgumentException("config file " + userFile + " does not exist");
            }
            user = ConfigFactory.parseFile(userFile.toFile(), ConfigParseOptions.defaults().setAllowMissing(false));
        }
        return ConfigFactory.systemProperties()
                .withFallback(ConfigFactory.parseMap(overrides, "command line"))
                .withFallback(user)
                .withFallback(ConfigFactory.parseResources(BitrelayConfig.class.getClassLoader(), DEFAULTS))
                .withFallback(ConfigFactory.defaultReference())
                .resolve();
    }
}
