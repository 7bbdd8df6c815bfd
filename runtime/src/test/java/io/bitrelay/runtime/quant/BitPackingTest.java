package io.bitrelay.runtime.quant;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

@Timeout(30)
class BitPackingTest {
    private static final byte SENTINEL = (byte) 0xa5;

    @Test
    void shouldSizeDensePacking() {
        assertEquals(1, BitPacking.packedBytes(1, 3));
        assertEquals(2, BitPacking.packedBytes(3, 3));
        assertEquals(3, BitPacking.packedBytes(8, 3));
        assertEquals(26, BitPacking.packedBytes(67, 3)); // 201 bits
        assertEquals(288, BitPacking.packedBytes(768, 3));
        assertEquals(1, BitPacking.packedBytes(1, 4));
        assertEquals(34, BitPacking.packedBytes(67, 4));
        assertEquals(0, BitPacking.packedBytes(0, 4));
        assertThrows(IllegalArgumentException.class, () -> BitPacking.packedBytes(8, 5));
    }

    @Test
    void shouldRoundTripEveryLengthFrom1To67At3And4Bits() {
        SplittableRandom random = new SplittableRandom(1);
        for (int bits : new int[] {3, 4}) {
            for (int count = 1; count <= 67; count++) {
                for (int from : new int[] {0, 5}) {
                    byte[] values = new byte[from + count];
                    for (int i = 0; i < values.length; i++) {
                        values[i] = (byte) random.nextInt(1 << bits);
                    }
                    int packedBytes = (int) BitPacking.packedBytes(count, bits);
                    long dstOffset = 3;
                    MemorySegment packed = Arena.ofAuto().allocate(dstOffset + packedBytes + 8);
                    packed.fill(SENTINEL);
                    BitPacking.pack(bits, values, from, count, packed, dstOffset);
                    for (long b = 0; b < dstOffset; b++) {
                        assertEquals(SENTINEL, packed.get(ValueLayout.JAVA_BYTE, b), "bytes before untouched");
                    }
                    for (long b = dstOffset + packedBytes; b < packed.byteSize(); b++) {
                        assertEquals(SENTINEL, packed.get(ValueLayout.JAVA_BYTE, b),
                                bits + " bits × " + count + ": byte " + b + " after the packed bytes untouched");
                    }
                    assertArrayEquals(referencePack(values, from, count, bits),
                            packed.asSlice(dstOffset, packedBytes).toArray(ValueLayout.JAVA_BYTE),
                            bits + " bits × " + count + ": LSB-first bit stream");
                    byte[] back = new byte[from + count + 2];
                    back[from + count] = SENTINEL;
                    BitPacking.unpack(bits, packed, dstOffset, back, from, count);
                    for (int i = 0; i < count; i++) {
                        assertEquals(values[from + i], back[from + i], bits + " bits × " + count + " at " + i);
                    }
                    assertEquals(SENTINEL, back[from + count], "unpack writes exactly count values");
                }
            }
        }
    }

    @Test
    void shouldPackEightThreeBitValuesIntoThreeBytesLeastSignificantFirst() {
        byte[] values = {1, 2, 3, 4, 5, 6, 7, 0};
        byte[] packed = new byte[3];
        BitPacking.pack(3, values, 0, 8, packed, 0);
        int stream = (packed[0] & 0xff) | (packed[1] & 0xff) << 8 | (packed[2] & 0xff) << 16;
        for (int i = 0; i < 8; i++) {
            assertEquals(values[i], stream >>> 3 * i & 7);
        }
        byte[] nibbles = new byte[1];
        BitPacking.pack(4, new byte[] {0x3, 0xc}, 0, 2, nibbles, 0);
        assertEquals((byte) 0xc3, nibbles[0]);
    }

    @Test
    void shouldMaskValuesToTheirBits() {
        byte[] values = {(byte) 0xff, 0x10, 0x0f, (byte) 0x88, 1, 2, 3, 4, 9};
        byte[] packed = new byte[5];
        BitPacking.pack(4, values, 0, 9, packed, 0);
        byte[] back = new byte[9];
        BitPacking.unpack(4, packed, 0, back, 0, 9);
        for (int i = 0; i < 9; i++) {
            assertEquals(values[i] & 0xf, back[i]);
        }
        byte[] packed3 = new byte[4];
        BitPacking.pack(3, values, 0, 9, packed3, 0);
        BitPacking.unpack(3, packed3, 0, back, 0, 9);
        for (int i = 0; i < 9; i++) {
            assertEquals(values[i] & 7, back[i]);
        }
    }

    @Test
    void shouldRejectUnsupportedWidthsAndRanges() {
        assertThrows(IllegalArgumentException.class, () -> BitPacking.pack(2, new byte[4], 0, 4, new byte[1], 0));
        assertThrows(IndexOutOfBoundsException.class, () -> BitPacking.pack(4, new byte[4], 2, 3, new byte[2], 0));
        assertThrows(IndexOutOfBoundsException.class, () -> BitPacking.pack(4, new byte[16], 0, 16, new byte[7], 0));
    }

    /** One bit at a time: bit b of the stream is bit b % 8 of byte b / 8. */
    private static byte[] referencePack(byte[] values, int from, int count, int bits) {
        byte[] out = new byte[(count * bits + 7) / 8];
        for (int i = 0; i < count; i++) {
            for (int b = 0; b < bits; b++) {
                if ((values[from + i] >> b & 1) != 0) {
                    int bit = i * bits + b;
                    out[bit / 8] |= (byte) (1 << bit % 8);
                }
            }
        }
        return out;
    }
}
