package io.bitrelay.runtime.cuda.cublaslt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Reads a cublasLtMatmulAlgo_t's configuration (cublasLtMatmulAlgoConfigAttributes_t) into one line. */
final class AlgoConfig {
    private static final String[] NAMES = {"id", "tile", "splitK", "reduction", "swizzle", "custom", "stages", "inner",
            "cluster"};
    /** Their sizes in cublasLt.h (int32/uint32, inner shape and cluster shape uint16). */
    private static final long[] SIZES = {4, 4, 4, 4, 4, 4, 4, 2, 2};
    /** CUBLASLT_MATMUL_TILE_* names for the ids below 59 (cublasLt.h); larger ids print as numbers. */
    private static final String[] TILES = {"undef", "8x8", "8x16", "16x8", "8x32", "16x16", "32x8", "8x64", "16x32",
            "32x16", "64x8", "32x32", "32x64", "64x32", "32x128", "64x64", "128x32", "64x128", "128x64", "64x256",
            "128x128", "256x64", "64x512", "128x256", "256x128", "512x64", "64x96", "96x64", "96x128", "128x160",
            "160x128", "192x128", "128x192", "128x96", "32x256", "256x32", "8x128", "8x192", "8x256", "8x320", "8x384",
            "8x448", "8x512", "8x576", "8x640", "8x704", "8x768", "16x64", "16x128", "16x192", "16x256", "16x320",
            "16x384", "16x448", "16x512", "16x576", "16x640", "16x704", "16x768"};

    private AlgoConfig() {
    }

    static String describe(CublasLtLibrary library, MemorySegment algo) {
        StringBuilder line = new StringBuilder();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(8);
            MemorySegment written = arena.allocate(ValueLayout.JAVA_LONG);
            for (int attribute = 0; attribute < NAMES.length; attribute++) {
                long bytes = read(library, algo, attribute, value, written);
                if (bytes <= 0) {
                    continue;
                }
                long v = switch ((int) bytes) {
                    case 1 -> value.get(ValueLayout.JAVA_BYTE, 0);
                    case 2 -> value.get(ValueLayout.JAVA_SHORT, 0);
                    case 4 -> value.get(ValueLayout.JAVA_INT, 0);
                    default -> value.get(ValueLayout.JAVA_LONG, 0);
                };
                if (attribute > 1 && v == 0) {
                    continue; // defaults (no split-K, no swizzle, ...) say nothing
                }
                if (!line.isEmpty()) {
                    line.append(' ');
                }
                line.append(NAMES[attribute]).append('=');
                line.append(attribute == 1 && v >= 0 && v < TILES.length ? TILES[(int) v] : Long.toString(v));
            }
        }
        return line.toString();
    }

    /** The attribute's size in bytes after reading it into {@code value}, or -1 when cuBLASLt declines. */
    private static long read(CublasLtLibrary library, MemorySegment algo, int attribute, MemorySegment value,
                             MemorySegment written) {
        try {
            value.fill((byte) 0);
            if ((int) library.algoConfigGetAttribute.invokeExact(algo, attribute, value, SIZES[attribute], written) == 0) {
                return SIZES[attribute];
            }
            // Another library version, another size: sizeInBytes 0 asks for the size the attribute needs.
            int status = (int) library.algoConfigGetAttribute.invokeExact(algo, attribute, MemorySegment.NULL, 0L, written);
            long size = written.get(ValueLayout.JAVA_LONG, 0);
            if (status != 0 || size <= 0 || size > 8) {
                return -1;
            }
            value.fill((byte) 0);
            status = (int) library.algoConfigGetAttribute.invokeExact(algo, attribute, value, size, written);
            return status == 0 ? size : -1;
        } catch (Throwable e) {
            return -1;
        }
    }
}
