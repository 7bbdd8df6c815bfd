package io.bitrelay.runtime.checkpoint;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.TreeSet;

/**
 * Identifies a checkpoint's weights without reading them: SHA-256 over config.json and, for every
 * safetensors file of the checkpoint (in name order), its name, size and raw header (tensor names, dtypes,
 * shapes, data offsets). Re-exporting or retraining a model changes it; copying it to another path does not.
 * A checkpoint rewritten with other values at the same offsets and sizes keeps its fingerprint: the
 * quantization store's per-file CRC32C catches a damaged stage file, not a silently retrained checkpoint.
 */
public final class ModelFingerprint {
    private ModelFingerprint() {
    }

    /** Hex SHA-256 (64 characters) of {@code directory}'s config and safetensors headers. */
    public static String of(Path directory) {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
        try {
            update(sha, "config.json");
            sha.update(Files.readAllBytes(directory.resolve(HfCheckpoint.CONFIG_FILE)));
            for (Path file : safetensorsFiles(directory)) {
                update(sha, file.getFileName().toString());
                try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                    long size = channel.size();
                    update(sha, Long.toString(size));
                    ByteBuffer length = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
                    channel.read(length, 0);
                    long headerBytes = length.flip().remaining() == Long.BYTES ? length.getLong() : -1;
                    if (headerBytes <= 0 || Long.BYTES + headerBytes > size || headerBytes > 100L << 20) {
                        throw new CheckpointException(file + ": header length " + headerBytes + " is impossible for a file of "
                                + size + " bytes");
                    }
                    ByteBuffer header = ByteBuffer.allocate((int) headerBytes);
                    while (header.hasRemaining() && channel.read(header, Long.BYTES + header.position()) > 0) {
                        // read until the header is complete
                    }
                    sha.update(header.flip());
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot fingerprint checkpoint " + directory + ": " + e.getMessage(), e);
        }
        return HexFormat.of().formatHex(sha.digest());
    }

    private static List<Path> safetensorsFiles(Path directory) throws IOException {
        try (var files = Files.list(directory)) {
            TreeSet<Path> sorted = new TreeSet<>();
            files.filter(f -> f.getFileName().toString().endsWith(".safetensors")).forEach(sorted::add);
            if (sorted.isEmpty()) {
                throw new CheckpointException(directory + ": no safetensors files to fingerprint");
            }
            return List.copyOf(sorted);
        }
    }

    private static void update(MessageDigest sha, String text) {
        sha.update(text.getBytes(StandardCharsets.UTF_8));
        sha.update((byte) 0);
    }
}
