package io.bitrelay.actors.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueFactory;
import com.typesafe.config.ConfigValueType;
import io.bitrelay.actors.coordinator.CoordinatorSettings;
import io.bitrelay.actors.gateway.GatewaySettings;
import io.bitrelay.actors.gateway.LocalBackendSettings;
import io.bitrelay.actors.worker.WorkerSettings;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Property-based fuzzing of bitrelay's configuration (issue 16): any key of the coordinator's (admission, failover,
 * quantization included), the gateway's or the single-process backend's section set to any HOCON value — numbers at
 * the edges, negative ones, words, durations and sizes with odd units, lists, objects, null — is either taken or
 * refused with an error naming the key. A number or on/off key given a word must be refused. Nothing else may
 * escape: a node with a bad config must stop at start with the key named, not fail later on a NullPointerException.
 */
class ConfigValueFuzzTest {
    private static final Config DEFAULTS = BitrelayConfig.load(Map.of("bitrelay.coordinator.checkpoint-dir", "/tmp/none"), null);
    private static final List<String> SECTIONS = List.of("bitrelay.coordinator", "bitrelay.quantization", "bitrelay.gateway",
            "bitrelay.local-backend", "bitrelay.worker");
    /** What the nodes read those sections with, at start. */
    private static final List<Function<Config, Object>> READERS = List.of(CoordinatorSettings::from, GatewaySettings::fromConfig,
            LocalBackendSettings::fromConfig, root -> WorkerSettings.from(root, "fuzzed-worker", "127.0.0.1"));

    @Property(tries = 600, seed = "16201")
    void anyValueOfAnyKeyIsTakenOrRefusedNamingTheKey(@ForAll("keys") String key, @ForAll("values") Object value) {
        String section = SECTIONS.stream().filter(s -> key.startsWith(s + ".")).findFirst().orElseThrow();
        String relative = key.substring(section.length() + 1);
        ConfigValue given = ConfigValueFactory.fromAnyRef(value, "fuzzed");
        Config config = DEFAULTS.withValue(key, given);
        ConfigValueType expected = DEFAULTS.getValue(key).valueType();
        for (Function<Config, Object> reader : READERS) {
            try {
                reader.apply(config);
            } catch (IllegalArgumentException | ConfigException e) {
                assertTrue(String.valueOf(e.getMessage()).contains(relative), key + " = " + given.render() + " refused"
                        + " without naming the key: " + e);
                return;
            } catch (RuntimeException e) {
                fail(key + " = " + given.render() + " escaped as " + e, e);
            }
        }
        boolean wrongType = (expected == ConfigValueType.NUMBER || expected == ConfigValueType.BOOLEAN)
                && value instanceof String word && !looksLike(expected, word);
        assertTrue(!wrongType, key + " (" + expected + ") took the word '" + value + "'");
    }

    /**
     * What HOCON itself reads as a number or a boolean from a string; a number with a unit too, since a size or
     * duration key whose default is a plain number (memory-bytes = 0) takes "8MiB" rightly.
     */
    private static boolean looksLike(ConfigValueType type, String word) {
        String w = word.trim();
        if (type == ConfigValueType.BOOLEAN) {
            return List.of("true", "false", "on", "off", "yes", "no").contains(w);
        }
        if (w.matches("-?\\d+(\\.\\d+)?\\s*[A-Za-z]+")) {
            return true;
        }
        try {
            Double.parseDouble(w);
            return true;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    @Provide
    Arbitrary<String> keys() {
        List<String> keys = SECTIONS.stream()
                .flatMap(section -> DEFAULTS.getConfig(section).entrySet().stream().map(e -> section + "." + e.getKey()))
                .filter(key -> !key.equals("bitrelay.coordinator.checkpoint-dir"))
                .sorted().toList();
        return Arbitraries.of(keys);
    }

    @Provide
    Arbitrary<Object> values() {
        return Arbitraries.oneOf(
                Arbitraries.of(0, 1, -1, 2, Integer.MAX_VALUE, Integer.MIN_VALUE, Long.MAX_VALUE, Long.MIN_VALUE, 1.5, -0.5,
                        1e300, Double.MIN_VALUE, 4096L),
                Arbitraries.integers(),
                Arbitraries.of(true, false),
                Arbitraries.of("", " ", "abc", "on", "off", "maybe", "-5s", "0s", "10 parsecs", "1 ms", "99999999999d",
                        "8MiB", "-1KiB", "1e3", "NaN", "Infinity", "int7", "fp16", "static", "cuda:0", "0.0.0.0", "${undefined}"),
                Arbitraries.strings().ofMaxLength(12),
                Combinators.combine(Arbitraries.integers().between(-10, 100_000), Arbitraries.of("", "ms", "s", "m", "h", "d",
                        "us", "ns", "B", "KiB", "MB", "GiB", "x")).as((n, unit) -> n + unit),
                Arbitraries.integers().between(-3, 3).list().ofMaxSize(3).map(list -> (Object) list),
                Arbitraries.just(Map.of("nested", 1)));
    }
}
