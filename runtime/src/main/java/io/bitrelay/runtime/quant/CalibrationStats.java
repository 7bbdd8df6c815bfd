package io.bitrelay.runtime.quant;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.model.opt.ActivationSite;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Comparator;
import java.util.Map;
import java.util.TreeMap;

/**
 * What calibration measured: per (layer, {@link ActivationSite}) the per-channel ranges of the activations.
 * It is the input of every recipe (SmoothQuant factors, static activation scales) and is saved as JSON
 * so a recipe can be rebuilt without calibrating again.
 *
 * <pre>
 * { "format": "bitrelay-calibration/1",
 *   "source": { "model": …, "text": …, "sequences": 128, "seqLen": 512, "ranges": "batch-mean" },
 *   "entries": [ { "layer": 0, "site": "qkv_input", "rows": 65536,
 *                  "min": [...], "max": [...], "absMax": [...] }, … ] }
 * </pre>
 */
public final class CalibrationStats {
    public static final String FORMAT = "bitrelay-calibration/1";
    private static final ObjectMapper WRITER = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    /** Numbers read as exact decimals, then parsed as float: a float written by Jackson comes back bit for bit. */
    private static final ObjectMapper READER = new ObjectMapper().enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS);

    /**
     * Where the statistics came from, for the record (and for a reader of the JSON).
     *
     * @param ranges how min/max were estimated; null when not recorded (files written before the choice existed
     *               hold extremes, statistics merged from a pipeline's stages say nothing)
     */
    public record Source(String model, String text, int sequences, int seqLen, RangeEstimator ranges) {
        public Source(String model, String text, int sequences, int seqLen) {
            this(model, text, sequences, seqLen, null);
        }

        public Source withRanges(RangeEstimator ranges) {
            return new Source(model, text, sequences, seqLen, ranges);
        }
    }

    /** One activation tensor: a global layer index and a site in it. */
    public record Key(int layer, ActivationSite site) implements Comparable<Key> {
        private static final Comparator<Key> ORDER = Comparator.comparingInt(Key::layer).thenComparing(Key::site);

        @Override
        public int compareTo(Key other) {
            return ORDER.compare(this, other);
        }
    }

    private final Source source;
    private final Map<Key, ChannelStats> entries;

    public CalibrationStats(Source source, Map<Key, ChannelStats> entries) {
        this.source = source;
        this.entries = Collections.unmodifiableMap(new TreeMap<>(entries));
    }

    public Source source() {
        return source;
    }

    public Map<Key, ChannelStats> entries() {
        return entries;
    }

    public boolean contains(int layer, ActivationSite site) {
        return entries.containsKey(new Key(layer, site));
    }

    /** The statistics of one (layer, site); fails naming what is missing. */
    public ChannelStats get(int layer, ActivationSite site) {
        ChannelStats stats = entries.get(new Key(layer, site));
        if (stats == null) {
            throw new IllegalArgumentException("calibration has no statistics for layer " + layer + " " + site.key()
                    + " (was it collected on this model's layers?)");
        }
        return stats;
    }

    /** A copy with some entries replaced (e.g. the ranges a smoothed layer will see). */
    public CalibrationStats with(Map<Key, ChannelStats> replacements) {
        Map<Key, ChannelStats> merged = new TreeMap<>(entries);
        merged.putAll(replacements);
        return new CalibrationStats(source, merged);
    }

    public void save(Path file) {
        ObjectNode root = WRITER.createObjectNode();
        root.put("format", FORMAT);
        ObjectNode src = root.putObject("source");
        src.put("model", source.model());
        src.put("text", source.text());
        src.put("sequences", source.sequences());
        src.put("seqLen", source.seqLen());
        if (source.ranges() != null) {
            src.put("ranges", source.ranges().key());
        }
        ArrayNode list = root.putArray("entries");
        entries.forEach((key, stats) -> {
            ObjectNode entry = list.addObject();
            entry.put("layer", key.layer());
            entry.put("site", key.site().key());
            entry.put("rows", stats.rows());
            floats(entry.putArray("min"), stats.min());
            floats(entry.putArray("max"), stats.max());
            floats(entry.putArray("absMax"), stats.absMax());
        });
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            WRITER.writeValue(file.toFile(), root);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write calibration statistics to " + file + ": " + e.getMessage(), e);
        }
    }

    public static CalibrationStats load(Path file) {
        JsonNode root;
        try {
            root = READER.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read calibration statistics from " + file + ": " + e.getMessage(), e);
        }
        if (!FORMAT.equals(root.path("format").asText())) {
            throw new IllegalArgumentException(file + ": not a calibration file (format must be " + FORMAT + ")");
        }
        JsonNode src = root.path("source");
        Source source = new Source(src.path("model").asText(), src.path("text").asText(),
                src.path("sequences").asInt(), src.path("seqLen").asInt(),
                src.hasNonNull("ranges") ? RangeEstimator.parse(src.get("ranges").asText(), file + " source.ranges") : null);
        Map<Key, ChannelStats> entries = new TreeMap<>();
        for (JsonNode entry : root.path("entries")) {
            Key key = new Key(entry.path("layer").asInt(), ActivationSite.fromKey(entry.path("site").asText()));
            entries.put(key, new ChannelStats(floats(entry.path("min")), floats(entry.path("max")),
                    floats(entry.path("absMax")), entry.path("rows").asLong()));
        }
        return new CalibrationStats(source, entries);
    }

    private static void floats(ArrayNode array, float[] values) {
        for (float v : values) {
            array.add(v);
        }
    }

    private static float[] floats(JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = Float.parseFloat(array.get(i).decimalValue().toString());
        }
        return out;
    }
}
