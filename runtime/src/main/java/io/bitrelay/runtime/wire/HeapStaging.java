package io.bitrelay.runtime.wire;

import javax.crypto.Cipher;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One reused heap array that frame bytes pass through on their way into the JDK's ciphers. Frames are off-heap, and
 * the JDK's AEAD intrinsics (Poly1305, AES-GCM) only run on heap arrays: handed a direct buffer, ChaCha20-Poly1305
 * hashes 16 bytes at a time in Java (0.7 GB/s here) and AES-GCM stages it 512 bytes at a time and copies AAD in whole.
 * A chunk that fits the L1 cache costs a copy at memory speed, far below the cipher's own time.
 */
final class HeapStaging {
    /** Fits L1 with room to spare, and a multiple of AES-GCM's 512-byte parallel block, so nothing is held back. */
    static final int CHUNK_BYTES = 16 * 1024;

    /** A chunk, plus room for the block a cipher may hold back and its tag. */
    final byte[] chunk = new byte[CHUNK_BYTES + 64];

    /** Feeds {@code frame[from, to)} to {@code cipher} as associated data, a chunk at a time. */
    void updateAad(Cipher cipher, MemorySegment frame, long from, long to) {
        for (long at = from; at < to; at += CHUNK_BYTES) {
            int n = (int) Math.min(CHUNK_BYTES, to - at);
            MemorySegment.copy(frame, ValueLayout.JAVA_BYTE, at, chunk, 0, n);
            cipher.updateAAD(chunk, 0, n);
        }
    }
}
