package io.bitrelay.runtime.wire;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The link frame: one micro-batch of activations going from stage i to stage i + 1. All fields are
 * little-endian; sections follow the header back to back, unpadded.
 *
 * <pre>
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                 Magic 'B' 'R' 'L' 'F' (u32)                   |  0
 *  +---------------+---------------+-------------------------------+
 *  |  Version (u8) | Codec Id (u8) |          Flags (u16)          |  4
 *  +---------------+---------------+-------------------------------+
 *  |                         Batch Id (i64)                        |  8
 *  |                                                               |
 *  +---------------------------------------------------------------+
 *  |                           Step (i32)                          | 16
 *  +-------------------------------+-------------------------------+
 *  |      Source Stage (u16)       |      Target Stage (u16)       | 20
 *  +-------------------------------+-------------------------------+
 *  |                 Rows (i32, tokens carried)                    | 24
 *  +---------------------------------------------------------------+
 *  |                          Width (i32)                          | 28
 *  +---------------------------------------------------------------+
 *  |                       Layout Length (i32)                     | 32
 *  +---------------------------------------------------------------+
 *  |                       Params Length (i32)                     | 36
 *  +---------------------------------------------------------------+
 *  |                      Payload Length (i32)                     | 40
 *  +---------------------------------------------------------------+
 *  |      Seal Length (i32: 0, or 28 on a protected link)          | 44
 *  +---------------------------------------------------------------+
 *  |         Layout: which sequences the rows belong to           ... 48
 *  |         (BatchLayout; opaque to the codec)                   ...
 *  +---------------------------------------------------------------+
 *  |         Codec params (e.g. INT8: one FP16 scale per row)     ...
 *  +---------------------------------------------------------------+
 *  |         Payload (e.g. INT8: rows × width bytes)              ...
 *  +---------------------------------------------------------------+
 *  |  Seal (protected links only, FrameSeal): 16-byte tag, then   ...
 *  |  12-byte nonce. Encrypted links: layout, params and payload  ...
 *  |  above are AES-256-GCM ciphertext, the header their AAD      ...
 *  +---------------------------------------------------------------+
 *  |            CRC32C (u32) over every byte before it             |
 *  +---------------------------------------------------------------+
 * </pre>
 *
 * Params and payload lengths are functions of (codec, rows, width), so a reader checks them before it
 * decodes; the frame's length must equal header + sections + seal + CRC exactly. Flags are free for the link
 * protocol (version 1 defines none). The seal length was a reserved field written as 0, so frames of unprotected
 * links are unchanged; a reader holding the link key refuses a frame without a seal, one without the key a frame
 * with one. The CRC covers the seal, so a frame corrupted on the way fails by its CRC, never as a forgery.
 */
public final class LinkFrame {
    public static final ByteOrder BYTE_ORDER = ByteOrder.LITTLE_ENDIAN;

    /** 'B' 'R' 'L' 'F' as the bytes appear on the wire, read as a little-endian u32. */
    public static final int MAGIC = 'B' | 'R' << 8 | 'L' << 16 | 'F' << 24;
    public static final int VERSION = 1;

    public static final int MAGIC_OFFSET = 0;
    public static final int VERSION_OFFSET = 4;
    public static final int CODEC_ID_OFFSET = 5;
    public static final int FLAGS_OFFSET = 6;
    public static final int BATCH_ID_OFFSET = 8;
    public static final int STEP_OFFSET = 16;
    public static final int SOURCE_STAGE_OFFSET = 20;
    public static final int TARGET_STAGE_OFFSET = 22;
    public static final int ROWS_OFFSET = 24;
    public static final int WIDTH_OFFSET = 28;
    public static final int LAYOUT_LENGTH_OFFSET = 32;
    public static final int PARAMS_LENGTH_OFFSET = 36;
    public static final int PAYLOAD_LENGTH_OFFSET = 40;
    public static final int SEAL_LENGTH_OFFSET = 44;
    public static final int HEADER_BYTES = 48;
    public static final int CRC_BYTES = 4;

    /** Source and target stages and flags are u16 on the wire. */
    public static final int MAX_U16 = 0xffff;
    /** Frames are checksummed through one ByteBuffer view, and Aeron caps a message far below this anyway. */
    public static final long MAX_FRAME_BYTES = Integer.MAX_VALUE;

    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(BYTE_ORDER);
    static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(BYTE_ORDER);
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(BYTE_ORDER);
    static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;

    private LinkFrame() {
    }

    /** Bytes of a whole unsealed frame (header, layout, params, payload, CRC) carrying rows × width through codec. */
    public static long frameBytes(LinkCodec codec, int layoutBytes, int rows, int width) {
        if (layoutBytes < 0 || rows < 1 || width < 1) {
            throw new IllegalArgumentException("a frame needs layoutBytes >= 0, rows >= 1 and width >= 1, got "
                    + layoutBytes + ", " + rows + ", " + width);
        }
        return frameBytes(layoutBytes, codec.paramsBytes(rows, width), codec.payloadBytes(rows, width));
    }

    static long frameBytes(long layoutBytes, long paramsBytes, long payloadBytes) {
        return HEADER_BYTES + layoutBytes + paramsBytes + payloadBytes + CRC_BYTES;
    }

    /** CRC32C of the first {@code length} bytes of {@code frame}; the direct-buffer path is an intrinsic. */
    static int crc32c(CRC32C crc, MemorySegment frame, long length) {
        crc.reset();
        crc.update(frame.asSlice(0, length).asByteBuffer());
        return (int) crc.getValue();
    }
}
