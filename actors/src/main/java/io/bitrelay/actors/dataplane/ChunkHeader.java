package io.bitrelay.actors.dataplane;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

import java.nio.ByteOrder;

/**
 * The header in front of every chunk of a frame on a link. A frame (opaque bytes, its own format and CRC
 * belong to runtime/wire) travels as {@code chunkCount} Aeron messages, each this header followed by up
 * to {@code maxMessageLength - LENGTH} bytes of the frame; a small frame is one chunk. Aeron may cut each
 * message into MTU-sized fragments; only the first fragment of a message carries this header.
 *
 * <pre>
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +---------------------------------------------------------------+
 *  |                    Frame Sequence (int64)                     |
 *  |                                                               |
 *  +---------------------------------------------------------------+
 *  |                     Frame Length (int32)                      |
 *  +---------------------------------------------------------------+
 *  |                     Chunk Index (int32)                       |
 *  +---------------------------------------------------------------+
 *  |                     Chunk Count (int32)                       |
 *  +---------------------------------------------------------------+
 *  |                     Chunk Length (int32)                      |
 *  +---------------------------------------------------------------+
 *  |                    Chunk bytes (Chunk Length)                ...
 * ...                                                              |
 *  +---------------------------------------------------------------+
 * </pre>
 *
 * Little-endian. Frame Sequence counts frames per publisher from 0; Frame Length is the whole frame in
 * bytes; Chunk Index runs 0..Chunk Count-1 in order; Chunk Length is the frame bytes in this chunk. The
 * header is 24 bytes, so after Aeron's 32-byte data header the chunk bytes start 8-byte aligned.
 */
public final class ChunkHeader {

    public static final int FRAME_SEQUENCE_OFFSET = 0;
    public static final int FRAME_LENGTH_OFFSET = 8;
    public static final int CHUNK_INDEX_OFFSET = 12;
    public static final int CHUNK_COUNT_OFFSET = 16;
    public static final int CHUNK_LENGTH_OFFSET = 20;
    public static final int LENGTH = 24;

    private static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;

    private ChunkHeader() {
    }

    public static void encode(MutableDirectBuffer buffer, int offset, long frameSequence, int frameLength,
                              int chunkIndex, int chunkCount, int chunkLength) {
        buffer.putLong(offset + FRAME_SEQUENCE_OFFSET, frameSequence, ORDER);
        buffer.putInt(offset + FRAME_LENGTH_OFFSET, frameLength, ORDER);
        buffer.putInt(offset + CHUNK_INDEX_OFFSET, chunkIndex, ORDER);
        buffer.putInt(offset + CHUNK_COUNT_OFFSET, chunkCount, ORDER);
        buffer.putInt(offset + CHUNK_LENGTH_OFFSET, chunkLength, ORDER);
    }

    public static long frameSequence(DirectBuffer buffer, int offset) {
        return buffer.getLong(offset + FRAME_SEQUENCE_OFFSET, ORDER);
    }

    public static int frameLength(DirectBuffer buffer, int offset) {
        return buffer.getInt(offset + FRAME_LENGTH_OFFSET, ORDER);
    }

    public static int chunkIndex(DirectBuffer buffer, int offset) {
        return buffer.getInt(offset + CHUNK_INDEX_OFFSET, ORDER);
    }

    public static int chunkCount(DirectBuffer buffer, int offset) {
        return buffer.getInt(offset + CHUNK_COUNT_OFFSET, ORDER);
    }

    public static int chunkLength(DirectBuffer buffer, int offset) {
        return buffer.getInt(offset + CHUNK_LENGTH_OFFSET, ORDER);
    }

    /** Chunks needed for a frame when each carries at most {@code chunkPayloadBytes}; an empty frame is one. */
    public static int chunkCount(int frameLength, int chunkPayloadBytes) {
        return frameLength == 0 ? 1 : (int) ((frameLength + (long) chunkPayloadBytes - 1) / chunkPayloadBytes);
    }
}
