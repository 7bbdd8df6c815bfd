package io.bitrelay.runtime.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.tensor.Fp32Tensors;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes one safetensors file from FP32 values, converting to the storage dtype on the way. Tensors are
 * declared first (the header must precede the data), then their values are streamed in declaration order.
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

    private final Path path;
    private final DType dtype;
    private final List<Declared> declared;
    private final FileChannel channel;
    private int nextTensor;

    /** Opens {@code path} and writes the header for {@code tensors}; values follow through {@link #write}. */
    public SafetensorsWriter(Path path, DType dtype, List<Declared> tensors) throws IOException {
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
            throw new IllegalArgumentException("storage dtype must be F32, F16 or BF16, not " + dtype);
        }
        this.path = path;
        this.dtype = dtype;
        this.declared = new ArrayList<>(tensors);
        this.channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        writeHeader();
    }

    private void writeHeader() throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Declared tensor : declared) {
            long bytes = tensor.elements() * dtype.byteSize();
            ObjectNode node = root.putObject(tensor.name());
            node.put("dtype", dtype.safetensorsName());
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
        if (nextTensor >= declared.size() || !declared.get(nextTensor).name().equals(name)) {
            throw new IllegalStateException(path + ": tensor '" + name + "' written out of declaration order");
        }
        Declared tensor = declared.get(nextTensor++);
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
