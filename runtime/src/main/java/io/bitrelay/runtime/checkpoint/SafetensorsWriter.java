package io.bitrelay.runtime.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.tensor.Fp32Tensors;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes one safetensors file. Tensors are declared first (the header must precede the data), then their
 * values are streamed in declaration order, either as FP32 values converted to one storage dtype
 * ({@link #SafetensorsWriter(Path, DType, List)} + {@link #write}) or as raw little-endian bytes of each
 * tensor's own dtype ({@link #raw} + {@link #writeRaw}: INT8 codes next to FP32 scales in one file).
 */
public final class SafetensorsWriter implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The format aligns the data section to 8 bytes by padding the header with spaces. */
    private static final int HEADER_ALIGNMENT = 8;

    public record Declared(String name, long[] shape) {
        public long elements() {
            long count = 1;
            for (long dim : shape) {
                count *= dim;
            }
            return count;
        }
    }

    /** A tensor of a raw file: its own dtype, its bytes written as they are. */
    public record RawDeclared(String name, DType dtype, long[] shape) {
        public long bytes() {
            return new Declared(name, shape).elements() * dtype.byteSize();
        }
    }

    private final Path path;
    private final DType dtype;            // the storage dtype of FP32 values; null for a raw file
    private final List<Declared> declared;
    private final List<DType> dtypes;     // per declared tensor
    private final FileChannel channel;
    private int nextTensor;

    /** Opens {@code path} and writes the header for {@code tensors}; values follow through {@link #write}. */
    public SafetensorsWriter(Path path, DType dtype, List<Declared> tensors) throws IOException {
        this(path, checkStorage(dtype), tensors, java.util.Collections.nCopies(tensors.size(), dtype), Map.of());
    }

    private SafetensorsWriter(Path path, DType dtype, List<Declared> tensors, List<DType> dtypes,
                              Map<String, String> metadata) throws IOException {
        this.path = path;
        this.dtype = dtype;
        this.declared = new ArrayList<>(tensors);
        this.dtypes = List.copyOf(dtypes);
        this.channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        try {
            writeHeader(metadata);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /**
     * Opens {@code path} for tensors of any dtype whose bytes are written as they are ({@link #writeRaw}), with
     * string {@code metadata} in the header's {@code __metadata__} (the format allows only string values).
     */
    public static SafetensorsWriter raw(Path path, List<RawDeclared> tensors, Map<String, String> metadata) throws IOException {
        List<Declared> declared = tensors.stream().map(t -> new Declared(t.name(), t.shape())).toList();
        return new SafetensorsWriter(path, null, declared, tensors.stream().map(RawDeclared::dtype).toList(), metadata);
    }

    private static DType checkStorage(DType dtype) {
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
            throw new IllegalArgumentException("storage dtype must be F32, F16 or BF16, not " + dtype);
        }
        return dtype;
    }

    private void writeHeader(Map<String, String> metadata) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode meta = root.putObject("__metadata__");
        meta.put("format", "pt");
        new java.util.TreeMap<>(metadata).forEach(meta::put);
        long offset = 0;
        for (int i = 0; i < declared.size(); i++) {
            Declared tensor = declared.get(i);
            DType type = dtypes.get(i);
            long bytes = tensor.elements() * type.byteSize();
            ObjectNode node = root.putObject(tensor.name());
            node.put("dtype", type.safetensorsName());
            var shape = node.putArray("shape");
            for (long dim : tensor.shape()) {
                shape.add(dim);
            }
            node.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json = JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + HEADER_ALIGNMENT - 1) / HEADER_ALIGNMENT * HEADER_ALIGNMENT;
        ByteBuffer header = ByteBuffer.allocate(Long.BYTES + padded).order(ByteOrder.LITTLE_ENDIAN);
        header.putLong(padded).put(json);
        while (header.hasRemaining()) {
            header.put((byte) ' ');
        }
        header.flip();
        writeFully(header);
    }

    /** Writes the next declared tensor's values; they must come in declaration order. */
    public void write(String name, float[] values) throws IOException {
        if (dtype == null) {
            throw new IllegalStateException(path + ": a raw file takes its tensors' bytes (writeRaw), not FP32 values");
        }
        Declared tensor = next(name);
        if (tensor.elements() != values.length) {
            throw new IllegalArgumentException(path + ": tensor '" + name + "' declared with " + tensor.elements()
                    + " elements, given " + values.length);
        }
        int chunkElements = 1 << 20;
        ByteBuffer buffer = ByteBuffer.allocateDirect(chunkElements * dtype.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        for (int start = 0; start < values.length; start += chunkElements) {
            int end = Math.min(values.length, start + chunkElements);
            buffer.clear();
            for (int i = start; i < end; i++) {
                switch (dtype) {
                    case F32 -> buffer.putFloat(values[i]);
                    case F16 -> buffer.putShort(Float.floatToFloat16(values[i]));
                    case BF16 -> buffer.putShort(Fp32Tensors.floatToBf16(values[i]));
                    default -> throw new IllegalStateException();
                }
            }
            buffer.flip();
            writeFully(buffer);
        }
    }

    /**
     * Writes the next declared tensor of a raw file: {@code data} holds its elements in its declared dtype,
     * native byte order (little-endian on every platform we run on; checked).
     */
    public void writeRaw(String name, MemorySegment data) throws IOException {
        if (dtype != null) {
            throw new IllegalStateException(path + ": this file converts FP32 values (write), it takes no raw bytes");
        }
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new IllegalStateException("raw safetensors writing assumes a little-endian platform");
        }
        int index = nextTensor;
        Declared tensor = next(name);
        long expected = tensor.elements() * dtypes.get(index).byteSize();
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException(path + ": tensor '" + name + "' declared as " + expected + " bytes of "
                    + dtypes.get(index) + ", given " + data.byteSize());
        }
        int chunkBytes = 1 << 22;
        for (long start = 0; start < expected; start += chunkBytes) {
            long length = Math.min(chunkBytes, expected - start);
            ByteBuffer buffer = ByteBuffer.allocate((int) length);
            MemorySegment.copy(data, start, MemorySegment.ofBuffer(buffer), 0, length);
            writeFully(buffer);
        }
    }

    private Declared next(String name) {
        if (nextTensor >= declared.size() || !declared.get(nextTensor).name().equals(name)) {
            throw new IllegalStateException(path + ": tensor '" + name + "' written out of declaration order");
        }
        return declared.get(nextTensor++);
    }

    private void writeFully(ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    @Override
    public void close() throws IOException {
        try {
            if (nextTensor != declared.size()) {
                throw new IllegalStateException(path + ": closed after " + nextTensor + " of " + declared.size() + " tensors");
            }
        } finally {
            channel.close();
        }
    }
}
