package io.bitrelay.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitrelay.runtime.tensor.DType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header mapping
 * tensor names to dtype, shape and data offsets, then the raw data. Nothing is read eagerly beyond the
 * header; {@link #data} hands out slices of the mapping, so a stage that needs a few layers of a huge
 * shard touches only those pages.
 *
 * <p>The header is validated completely on open (offsets inside the file, sizes matching shape × dtype,
 * no overlaps), because a truncated or corrupt file must fail with its name, not produce garbage weights.
 */
public final class SafetensorsFile {
    /** The format's own cap on header size (100 MB); a larger value means a corrupt or foreign file. */
    private static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path path;
    private final MemorySegment mapping;
    private final long dataStart;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, MemorySegment mapping, long dataStart, Map<String, TensorInfo> tensors,
                            Map<String, String> metadata) {
        this.path = path;
        this.mapping = mapping;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Maps {@code path} read-only into {@code arena}; the mapping lives as long as the arena. */
    public static SafetensorsFile open(Path path, Arena arena) {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long fileSize = channel.size();
            if (fileSize < Long.BYTES) {
                throw new CheckpointException(path + ": file is " + fileSize + " bytes, too short to be safetensors");
            }
            MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, arena);
            long headerBytes = mapping.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (headerBytes <= 0 || headerBytes > MAX_HEADER_BYTES || Long.BYTES + headerBytes > fileSize) {
                throw new CheckpointException(path + ": header length " + headerBytes
                        + " is impossible for a file of " + fileSize + " bytes (truncated or not safetensors)");
            }
            byte[] header = mapping.asSlice(Long.BYTES, headerBytes).toArray(ValueLayout.JAVA_BYTE);
            long dataStart = Long.BYTES + headerBytes;
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, TensorInfo> tensors = parseHeader(path, header, fileSize - dataStart, metadata);
            return new SafetensorsFile(path, mapping, dataStart, tensors, Collections.unmodifiableMap(metadata));
        } catch (IOException e) {
            throw new CheckpointException(path + ": cannot map file: " + e.getMessage(), e);
        }
    }

    private static Map<String, TensorInfo> parseHeader(Path path, byte[] header, long dataBytes, Map<String, String> metadata) {
        JsonNode root;
        try {
            root = JSON.readTree(new String(header, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new CheckpointException(path + ": header is not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointException(path + ": header is not a JSON object");
        }
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            if (entry.getKey().equals("__metadata__")) {
                entry.getValue().properties().forEach(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            tensors.put(entry.getKey(), parseTensor(path, entry.getKey(), entry.getValue(), dataBytes));
        }
        checkNoOverlap(path, tensors);
        return Collections.unmodifiableMap(tensors);
    }

    private static TensorInfo parseTensor(Path path, String name, JsonNode node, long dataBytes) {
        String where = path + ": tensor '" + name + "'";
        JsonNode dtypeNode = node.get("dtype");
        JsonNode shapeNode = node.get("shape");
        JsonNode offsetsNode = node.get("data_offsets");
        if (dtypeNode == null || shapeNode == null || !shapeNode.isArray()
                || offsetsNode == null || !offsetsNode.isArray() || offsetsNode.size() != 2) {
            throw new CheckpointException(where + ": header entry needs dtype, shape and two data_offsets");
        }
        DType dtype;
        try {
            dtype = DType.fromSafetensors(dtypeNode.asText());
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(where + ": " + e.getMessage());
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            if (!shapeNode.get(i).canConvertToLong() || shapeNode.get(i).asLong() < 0) {
                throw new CheckpointException(where + ": bad dimension " + shapeNode.get(i));
            }
            shape[i] = shapeNode.get(i).asLong();
        }
        long begin = offsetsNode.get(0).asLong(-1);
        long end = offsetsNode.get(1).asLong(-1);
        TensorInfo info = new TensorInfo(name, dtype, shape, begin, end);
        if (begin < 0 || end < begin) {
            throw new CheckpointException(where + ": bad data_offsets [" + begin + ", " + end + "]");
        }
        if (end > dataBytes) {
            throw new CheckpointException(where + ": data ends at byte " + end + " but the file holds only "
                    + dataBytes + " data bytes (truncated file?)");
        }
        long expected;
        try {
            expected = Math.multiplyExact(info.elementCount(), dtype.byteSize());
        } catch (ArithmeticException e) {
            throw new CheckpointException(where + ": shape " + info.shapeString() + " overflows");
        }
        if (expected != info.byteSize()) {
            throw new CheckpointException(where + ": shape " + info.shapeString() + " of " + dtype
                    + " needs " + expected + " bytes but data_offsets span " + info.byteSize());
        }
        return info;
    }

    private static void checkNoOverlap(Path path, Map<String, TensorInfo> tensors) {
        List<TensorInfo> byOffset = new ArrayList<>(tensors.values());
        byOffset.sort(Comparator.comparingLong(TensorInfo::dataBegin));
        for (int i = 1; i < byOffset.size(); i++) {
            TensorInfo previous = byOffset.get(i - 1);
            TensorInfo current = byOffset.get(i);
            if (current.dataBegin() < previous.dataEnd() && current.byteSize() > 0 && previous.byteSize() > 0) {
                throw new CheckpointException(path + ": tensors '" + previous.name() + "' and '" + current.name()
                        + "' overlap in the data section");
            }
        }
    }

    public Path path() {
        return path;
    }

    /** The header's {@code __metadata__} (string values), empty when it has none. */
    public Map<String, String> metadata() {
        return metadata;
    }

    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** @throws CheckpointException naming the file when the tensor is not in it */
    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new CheckpointException(path + ": no tensor '" + name + "'");
        }
        return info;
    }

    /** The tensor's raw bytes, a read-only view of the mapping (no copy). */
    public MemorySegment data(TensorInfo info) {
        return mapping.asSlice(dataStart + info.dataBegin(), info.byteSize());
    }
}
