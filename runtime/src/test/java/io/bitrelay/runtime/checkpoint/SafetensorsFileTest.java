package io.bitrelay.runtime.checkpoint;

import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.model.opt.OptModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsFileTest {
    @TempDir
    Path temp;

    private static Path writeRaw(Path file, String header, int dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buffer = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putLong(json.length).put(json);
        Files.write(file, buffer.array());
        return file;
    }

    private static CheckpointException failure(Path file) {
        try (Arena arena = Arena.ofConfined()) {
            return assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file, arena));
        }
    }

    @Test
    void shouldReadHeaderAndData() throws IOException {
        Path file = writeRaw(temp.resolve("ok.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},\"__metadata__\":{\"format\":\"pt\"}}", 24);
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile st = SafetensorsFile.open(file, arena);
            TensorInfo info = st.info("a");
            assertEquals(6, info.elementCount());
            assertEquals(24, st.data(info).byteSize());
        }
    }

    @Test
    void shouldRejectTruncatedData() throws IOException {
        Path file = writeRaw(temp.resolve("short.safetensors"),
                "{\"w\":{\"dtype\":\"F16\",\"shape\":[4,4],\"data_offsets\":[0,32]}}", 20);
        CheckpointException e = failure(file);
        assertTrue(e.getMessage().contains("short.safetensors") && e.getMessage().contains("'w'")
                && e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void shouldRejectShapeThatDisagreesWithOffsets() throws IOException {
        Path file = writeRaw(temp.resolve("bad.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,32]}}", 32);
        CheckpointException e = failure(file);
        assertTrue(e.getMessage().contains("'w'") && e.getMessage().contains("needs 64 bytes"), e.getMessage());
    }

    @Test
    void shouldRejectGarbageHeader() throws IOException {
        Path file = temp.resolve("garbage.safetensors");
        Files.write(file, new byte[]{(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 1, 2, 3, 4, 5, 6});
        assertTrue(failure(file).getMessage().contains("header length"));
        Path notJson = writeRaw(temp.resolve("notjson.safetensors"), "{nope", 0);
        assertTrue(failure(notJson).getMessage().contains("not valid JSON"));
    }

    @Test
    void shouldRejectUnknownDtypeAndOverlaps() throws IOException {
        Path dtype = writeRaw(temp.resolve("dtype.safetensors"),
                "{\"w\":{\"dtype\":\"F8_E4M3X\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
        assertTrue(failure(dtype).getMessage().contains("F8_E4M3X"));
        Path overlap = writeRaw(temp.resolve("overlap.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        assertTrue(failure(overlap).getMessage().contains("overlap"));
    }

    @Test
    void shouldNameFileWhenCheckpointIsTruncatedOnDisk() throws IOException {
        Path checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
        Path weights = checkpoint.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        Files.write(weights, java.util.Arrays.copyOf(bytes, bytes.length - 100));
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptModel.load(checkpoint));
        assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void shouldNameMissingShardAndMissingTensor() throws IOException {
        Path checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
        Files.writeString(checkpoint.resolve(HfCheckpoint.INDEX_FILE),
                "{\"weight_map\":{\"model.decoder.embed_tokens.weight\":\"model-00002-of-00002.safetensors\"}}");
        CheckpointException missingShard = assertThrows(CheckpointException.class, () -> HfCheckpoint.open(checkpoint));
        assertTrue(missingShard.getMessage().contains("model-00002-of-00002.safetensors"), missingShard.getMessage());

        Files.delete(checkpoint.resolve(HfCheckpoint.INDEX_FILE));
        try (HfCheckpoint opened = HfCheckpoint.open(checkpoint)) {
            CheckpointException missing = assertThrows(CheckpointException.class, () -> opened.tensor("model.decoder.layers.9.fc1.weight"));
            assertTrue(missing.getMessage().contains("model.decoder.layers.9.fc1.weight"), missing.getMessage());
        }
    }
}
