package io.bitrelay.runtime.cuda.cublaslt;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

/**
 * Tuned GEMM choices kept on disk, one JSON file per GPU model, cuBLASLt version and {@link GemmSearch}, so a
 * restarted stage reuses what an earlier one timed instead of tuning again (seconds per shape with the variation
 * search). An entry is only a hint: {@link GemmAutotuner#adopt} has cuBLASLt check each algorithm against the plan
 * before using it, and drops what it refuses.
 */
public final class GemmTuningCache {
    private static final int FORMAT = 1;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One tuned GEMM: its key, the layout and cublasLtMatmulAlgo_t bytes that won, and what they cost then. */
    public record Entry(GemmPrecision precision, int m, int n, int k, GemmLayout layout, byte[] algo, double micros) {
        public Entry {
            if (algo.length != CublasLtLibrary.ALGO_BYTES) {
                throw new IllegalArgumentException("a cuBLASLt algorithm is " + CublasLtLibrary.ALGO_BYTES + " bytes, got "
                        + algo.length);
            }
        }
    }

    private GemmTuningCache() {
    }

    /** The file for this GPU model, library version and search under {@code directory}. */
    public static Path file(Path directory, String gpuName, long cublasLtVersion, GemmSearch search) {
        String name = (gpuName + "-cublaslt" + cublasLtVersion + "-" + search.label()).toLowerCase(Locale.ROOT)
                .replaceAll("[^a-z0-9.]+", "-");
        return directory.resolve(name + ".json");
    }

    /** The entries of {@code file}; a file that is not one of ours is refused with what is wrong and where. */
    public static List<Entry> read(Path file) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (JacksonException e) {
            throw new IOException(file + " is not a GEMM tuning cache (malformed JSON: " + e.getOriginalMessage() + ")", e);
        }
        if (root == null || root.path("format").asInt(-1) != FORMAT || !root.path("entries").isArray()) {
            throw new IOException(file + " is not a GEMM tuning cache of format " + FORMAT);
        }
        List<Entry> entries = new ArrayList<>();
        int index = 0;
        for (JsonNode node : root.get("entries")) {
            try {
                entries.add(new Entry(GemmPrecision.valueOf(node.path("precision").asText()), positive(node, "m"),
                        positive(node, "n"), positive(node, "k"), GemmLayout.valueOf(node.path("layout").asText()),
                        HexFormat.of().parseHex(node.path("algo").asText()), node.path("micros").asDouble(Double.NaN)));
            } catch (IllegalArgumentException e) {
                throw new IOException(file + ": entry " + index + " is malformed (" + e.getMessage() + ")", e);
            }
            index++;
        }
        return entries;
    }

    /** Writes {@code entries} to {@code file} through a temporary file, so a reader never sees half of it. */
    public static void write(Path file, List<Entry> entries) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        ArrayNode array = root.putArray("entries");
        for (Entry entry : entries) {
            ObjectNode node = array.addObject();
            node.put("precision", entry.precision().name());
            node.put("m", entry.m());
            node.put("n", entry.n());
            node.put("k", entry.k());
            node.put("layout", entry.layout().name());
            node.put("algo", HexFormat.of().formatHex(entry.algo()));
            node.put("micros", entry.micros());
        }
        Files.createDirectories(file.toAbsolutePath().getParent());
        Path temporary = Files.createTempFile(file.toAbsolutePath().getParent(), file.getFileName().toString(), ".tmp");
        try {
            JSON.writerWithDefaultPrettyPrinter().writeValue(temporary.toFile(), root);
            Files.move(temporary, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(temporary);
        }
    }

    private static int positive(JsonNode node, String field) {
        int value = node.path(field).asInt(0);
        if (value <= 0) {
            throw new IllegalArgumentException(field + " must be a positive integer, got " + node.path(field));
        }
        return value;
    }
}
