package io.bitrelay.runtime.cuda;

import io.bitrelay.kernels.KernelImage;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KernelImageTest {
    @Test
    void shouldShipAFatbinWhenTheBuildHadNvcc() {
        Optional<byte[]> image = KernelImage.load();
        if (image.isEmpty()) {
            String reason = "bitrelay.fatbin not built (no nvcc on the build machine)";
            System.out.println("[test skipped] " + reason);
            Assumptions.assumeTrue(false, reason);
        }
        byte[] bytes = image.get();
        assertTrue(bytes.length > 1024, "fatbin of " + bytes.length + " bytes");
        int magic = (bytes[0] & 0xff) | (bytes[1] & 0xff) << 8 | (bytes[2] & 0xff) << 16 | (bytes[3] & 0xff) << 24;
        assertEquals(KernelImage.FATBIN_MAGIC, magic);
    }
}
