package io.bitrelay.kernels;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Optional;

/**
 * The fatbin that nvcc built from {@code kernels/src/main/cuda} (sm_80 and sm_90a machine code, compute_90
 * PTX), shipped as a resource of this jar. Absent when the build machine had no nvcc.
 */
public final class KernelImage {
    /** Classpath location of the fatbin. */
    public static final String RESOURCE = "/io/bitrelay/kernels/bitrelay.fatbin";
    /** First word of every fatbin (little-endian 0xBA55ED50), checked so a truncated file fails early. */
    public static final int FATBIN_MAGIC = 0xBA55ED50;

    private KernelImage() {
    }

    /** The fatbin's bytes, or empty when this build was made without nvcc. */
    public static Optional<byte[]> load() {
        try (InputStream in = KernelImage.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                return Optional.empty();
            }
            byte[] image = in.readAllBytes();
            if (image.length < 16 || magic(image) != FATBIN_MAGIC) {
                throw new IllegalStateException(RESOURCE + " is not a fatbin (" + image.length + " bytes)");
            }
            return Optional.of(image);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE, e);
        }
    }

    private static int magic(byte[] image) {
        return (image[0] & 0xff) | (image[1] & 0xff) << 8 | (image[2] & 0xff) << 16 | (image[3] & 0xff) << 24;
    }
}
