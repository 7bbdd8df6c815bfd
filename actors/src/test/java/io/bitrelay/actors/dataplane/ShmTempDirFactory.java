package io.bitrelay.actors.dataplane;

import org.junit.jupiter.api.extension.AnnotatedElementContext;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.io.TempDirFactory;

import java.nio.file.Files;
import java.nio.file.Path;

/** @TempDir on tmpfs (/dev/shm) where there is one, so Aeron's mapped logs never touch a disk. */
public final class ShmTempDirFactory implements TempDirFactory {

    @Override
    public Path createTempDirectory(AnnotatedElementContext elementContext, ExtensionContext extensionContext)
            throws Exception {
        Path shm = Path.of("/dev/shm");
        return Files.isDirectory(shm) && Files.isWritable(shm)
                ? Files.createTempDirectory(shm, "bitrelay-test-")
                : Files.createTempDirectory("bitrelay-test-");
    }
}
