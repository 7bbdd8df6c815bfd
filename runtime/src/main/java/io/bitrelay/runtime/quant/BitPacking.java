package io.bitrelay.runtime.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Dense packing of small unsigned integers, one per byte in a {@code byte[]}, into a bit stream and back.
 * Value {@code i} occupies bits {@code [bits × i, bits × (i + 1))} of the stream, least significant bit
 * first, and bit {@code b} of the stream is bit {@code b % 8} of byte {@code b / 8}:
 *
 * <pre>
 *  4 bits: two per byte, even value in the low nibble      byte 0 = v1 v1 v1 v1 v0 v0 v0 v0
 *  3 bits: eight values in three bytes (24 bits)           byte 0 = v2 v2 v1 v1 v1 v0 v0 v0
 *                                                          byte 1 = v5 v4 v4 v4 v3 v3 v3 v2
 *                                                          byte 2 = v7 v7 v7 v6 v6 v6 v5 v5
 * </pre>
 *
 * A tail of fewer than 8 values takes {@code ceil(bits × n / 8)} bytes; unused high bits of the last byte
 * are zero. Packing masks each value to its low {@code bits} bits. 4 bits move 32 values per step through
 * 256-bit vectors where the CPU has them (bytes seen as shorts: {@code low | high << 4}, narrowed to bytes);
 * both widths then move 8 values per step through one {@code long} (SWAR), and the tail one at a time.
 */
public final class BitPacking {
    private static final VarHandle LONG_LE = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;
    /** 256-bit vectors only where they are native: emulated wider shapes would be slower than SWAR. */
    private static final boolean VECTOR_NIBBLES = ByteVector.SPECIES_PREFERRED.vectorBitSize() >= 256;
    private static final VectorSpecies<Byte> BYTES_256 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Byte> BYTES_128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Short> SHORTS_256 = ShortVector.SPECIES_256;
    private static final int NIBBLES_PER_VECTOR = 32;

    private BitPacking() {
    }

    /** Bytes that {@code count} values of {@code bits} bits take: ceil(count × bits / 8). */
    public static long packedBytes(long count, int bits) {
        checkBits(bits);
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0, got " + count);
        }
        return Math.ceilDiv(Math.multiplyExact(count, bits), Byte.SIZE);
    }

    /** Packs {@code values[from, from + count)} into {@link #packedBytes} bytes of {@code dst} at {@code dstOffset}. */
    public static void pack(int bits, byte[] values, int from, int count, MemorySegment dst, long dstOffset) {
        checkRange(values, from, count);
        switch (bits) {
            case 4 -> pack4(values, from, count, dst, dstOffset);
            case 3 -> pack3(values, from, count, dst, dstOffset);
            default -> checkBits(bits);
        }
    }

    /** Unpacks {@code count} values from {@code src} at {@code srcOffset} into {@code values[from, from + count)}. */
    public static void unpack(int bits, MemorySegment src, long srcOffset, byte[] values, int from, int count) {
        checkRange(values, from, count);
        switch (bits) {
            case 4 -> unpack4(src, srcOffset, values, from, count);
            case 3 -> unpack3(src, srcOffset, values, from, count);
            default -> checkBits(bits);
        }
    }

    /** Array form of {@link #pack(int, byte[], int, int, MemorySegment, long)}. */
    public static void pack(int bits, byte[] values, int from, int count, byte[] dst, int dstOffset) {
        pack(bits, values, from, count, MemorySegment.ofArray(dst), dstOffset);
    }

    /** Array form of {@link #unpack(int, MemorySegment, long, byte[], int, int)}. */
    public static void unpack(int bits, byte[] src, int srcOffset, byte[] values, int from, int count) {
        unpack(bits, MemorySegment.ofArray(src), srcOffset, values, from, count);
    }

    private static void pack4(byte[] values, int from, int count, MemorySegment dst, long dstOffset) {
        int i = 0;
        long out = dstOffset;
        if (VECTOR_NIBBLES) {
            for (; i + NIBBLES_PER_VECTOR <= count; i += NIBBLES_PER_VECTOR, out += NIBBLES_PER_VECTOR / 2) {
                ShortVector pairs = ByteVector.fromArray(BYTES_256, values, from + i).and((byte) 0xf).reinterpretAsShorts();
                ShortVector packed = pairs.or(pairs.lanewise(VectorOperators.LSHR, 4)).and((short) 0xff);
                ((ByteVector) packed.castShape(BYTES_128, 0)).intoMemorySegment(dst, out, ByteOrder.LITTLE_ENDIAN);
            }
        }
        for (; i + 8 <= count; i += 8, out += 4) {
            long x = (long) LONG_LE.get(values, from + i) & 0x0f0f0f0f0f0f0f0fL; // byte j = v_j
            x = (x | x >>> 4) & 0x00ff00ff00ff00ffL;       // 16-bit lane j = v_2j | v_2j+1 << 4
            x = (x | x >>> 8) & 0x0000ffff0000ffffL;       // 32-bit lane j = two packed bytes
            x = (x | x >>> 16) & 0xffffffffL;              // four packed bytes
            dst.set(I32_LE, out, (int) x);
        }
        for (; i < count; i += 2, out++) {
            int low = values[from + i] & 0xf;
            int high = i + 1 < count ? values[from + i + 1] & 0xf : 0;
            dst.set(U8, out, (byte) (low | high << 4));
        }
    }

    private static void unpack4(MemorySegment src, long srcOffset, byte[] values, int from, int count) {
        int i = 0;
        long in = srcOffset;
        if (VECTOR_NIBBLES) {
            for (; i + NIBBLES_PER_VECTOR <= count; i += NIBBLES_PER_VECTOR, in += NIBBLES_PER_VECTOR / 2) {
                ShortVector packed = ((ShortVector) ByteVector.fromMemorySegment(BYTES_128, src, in, ByteOrder.LITTLE_ENDIAN)
                        .castShape(SHORTS_256, 0)).and((short) 0xff); // the cast sign-extends
                packed.and((short) 0x0f).or(packed.and((short) 0xf0).lanewise(VectorOperators.LSHL, 4))
                        .reinterpretAsBytes().intoArray(values, from + i);
            }
        }
        for (; i + 8 <= count; i += 8, in += 4) {
            long x = src.get(I32_LE, in) & 0xffffffffL;
            x = (x | x << 16) & 0x0000ffff0000ffffL;
            x = (x | x << 8) & 0x00ff00ff00ff00ffL;        // byte 2j = packed byte j
            x = (x & 0x000f000f000f000fL) | (x & 0x00f000f000f000f0L) << 4; // high nibble to the odd byte
            LONG_LE.set(values, from + i, x);
        }
        for (; i < count; i += 2, in++) {
            int packed = src.get(U8, in);
            values[from + i] = (byte) (packed & 0xf);
            if (i + 1 < count) {
                values[from + i + 1] = (byte) (packed >>> 4 & 0xf);
            }
        }
    }

    private static void pack3(byte[] values, int from, int count, MemorySegment dst, long dstOffset) {
        int i = 0;
        long out = dstOffset;
        for (; i + 8 <= count; i += 8, out += 3) {
            long x = (long) LONG_LE.get(values, from + i) & 0x0707070707070707L; // byte j = v_j
            x = (x | x >>> 5) & 0x003f003f003f003fL;       // 16-bit lane j: 6 bits, v_2j | v_2j+1 << 3
            x = (x | x >>> 10) & 0x00000fff00000fffL;      // 32-bit lane j: 12 bits
            x = (x | x >>> 20) & 0xffffffL;                // 24 bits
            dst.set(I16_LE, out, (short) x);
            dst.set(U8, out + 2, (byte) (x >>> 16));
        }
        if (i < count) {
            long bitsLeft = 0;
            int n = 0;
            for (; i < count; i++, n += 3) {
                bitsLeft |= (long) (values[from + i] & 7) << n;
            }
            for (int b = 0; b < n; b += 8, out++) {
                dst.set(U8, out, (byte) (bitsLeft >>> b));
            }
        }
    }

    private static void unpack3(MemorySegment src, long srcOffset, byte[] values, int from, int count) {
        int i = 0;
        long in = srcOffset;
        for (; i + 8 <= count; i += 8, in += 3) {
            long x = (src.get(I16_LE, in) & 0xffffL) | (src.get(U8, in + 2) & 0xffL) << 16;
            x = (x | x << 20) & 0x00000fff00000fffL;
            x = (x | x << 10) & 0x003f003f003f003fL;
            x = (x | x << 5) & 0x0707070707070707L;
            LONG_LE.set(values, from + i, x);
        }
        if (i < count) {
            int tail = count - i;
            long stream = 0;
            int tailBytes = Math.ceilDiv(3 * tail, 8);
            for (int b = 0; b < tailBytes; b++) {
                stream |= (src.get(U8, in + b) & 0xffL) << 8 * b;
            }
            for (int j = 0; j < tail; j++) {
                values[from + i + j] = (byte) (stream >>> 3 * j & 7);
            }
        }
    }

    private static void checkBits(int bits) {
        if (bits != 3 && bits != 4) {
            throw new IllegalArgumentException("bit packing supports 3 and 4 bits, got " + bits);
        }
    }

    private static void checkRange(byte[] values, int from, int count) {
        if (from < 0 || count < 0 || from > values.length - count) {
            throw new IndexOutOfBoundsException("values[" + from + ", " + ((long) from + count) + ") of an array of "
                    + values.length);
        }
    }
}
