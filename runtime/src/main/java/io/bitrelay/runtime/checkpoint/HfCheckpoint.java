package io.bitrelay.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A Hugging Face checkpoint directory as users have it: config.json plus either model.safetensors or
 * shards listed by model.safetensors.index.json. Shards are mapped on first use, so a pipeline stage
 * holding layers 40–47 of a 175B model maps only the shards those layers live in.
 */
public final class HfCheckpoint implements AutoCloseable {
    public static final String CONFIG_FILE = "config.json";
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path directory;
    private final Arena arena = Arena.ofShared();
    /** tensor name → shard file name (relative to directory). */
    private final Map<String, String> tensorToFile;
    private final Map<String, SafetensorsFile> openFiles = new HashMap<>();

    private HfCheckpoint(Path directory, Map<String, String> tensorToFile) {
        this.directory = directory;
        this.tensorToFile = tensorToFile;
    }

    public static HfCheckpoint open(Path directory) {
        if (!Files.isDirectory(directory)) {
            throw new CheckpointException(directory + ": not a checkpoint directory (it does not exist or is a file)");
        }
        if (!Files.isRegularFile(directory.resolve(CONFIG_FILE))) {
            throw new CheckpointException(directory + ": missing " + CONFIG_FILE);
        }
        Path index = directory.resolve(INDEX_FILE);
        if (Files.isRegularFile(index)) {
            return new HfCheckpoint(directory, readIndex(directory, index));
        }
        Path single = directory.resolve(SINGLE_FILE);
        if (!Files.isRegularFile(single)) {
            throw new CheckpointException(directory + ": neither " + SINGLE_FILE + " nor " + INDEX_FILE + " found");
        }
        HfCheckpoint checkpoint = new HfCheckpoint(directory, new LinkedHashMap<>());
        SafetensorsFile file = checkpoint.file(SINGLE_FILE);
        for (String name : file.tensors().keySet()) {
            checkpoint.tensorToFile.put(name, SINGLE_FILE);
        }
        return checkpoint;
    }

    private static Map<String, String> readIndex(Path directory, Path index) {
        JsonNode root;
        try {
            root = JSON.readTree(index.toFile());
        } catch (IOException e) {
            throw new CheckpointException(index + ": not valid JSON: " + e.getMessage(), e);
        }
        JsonNode weightMap = root == null ? null : root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new CheckpointException(index + ": no weight_map object");
        }
        Map<String, String> tensorToFile = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            String file = entry.getValue().asText();
            if (file.isEmpty() || file.contains("/") || file.contains("..")) {
                throw new CheckpointException(index + ": tensor '" + entry.getKey() + "' maps to bad shard name '" + file + "'");
            }
            if (!Files.isRegularFile(directory.resolve(file))) {
                throw new CheckpointException(index + ": tensor '" + entry.getKey() + "' is in shard " + file
                        + ", which is missing from " + directory);
            }
            tensorToFile.put(entry.getKey(), file);
        }
        return tensorToFile;
    }

    public Path directory() {
        return directory;
    }

    public Path configFile() {
        return directory.resolve(CONFIG_FILE);
    }

    public boolean contains(String tensorName) {
        return tensorToFile.containsKey(tensorName);
    }

    /** A stored tensor: its header entry, the file it lives in, and its bytes (a view of the mapping). */
    public record StoredTensor(TensorInfo info, Path file, MemorySegment data) {
    }

    /** @throws CheckpointException naming the directory and tensor when it is missing */
    public StoredTensor tensor(String name) {
        String fileName = tensorToFile.get(name);
        if (fileName == null) {
            throw new CheckpointException(directory + ": missing tensor '" + name + "'");
        }
        SafetensorsFile file = file(fileName);
        if (!file.tensors().containsKey(name)) {
            throw new CheckpointException(file.path() + ": missing tensor '" + name + "' (the index places it in this shard)");
        }
        TensorInfo info = file.info(name);
        return new StoredTensor(info, file.path(), file.data(info));
    }

    private synchronized SafetensorsFile file(String fileName) {
        return openFiles.computeIfAbsent(fileName, f -> SafetensorsFile.open(directory.resolve(f), arena));
    }

    /** Unmaps every shard; tensors handed out before become inaccessible. */
    @Override
    public void close() {
        arena.close();
    }
}
