package io.bitrelay.actors.dataplane;

import io.aeron.driver.ThreadingMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MediaDriverHostTest {

    @TempDir(factory = ShmTempDirFactory.class)
    Path tempDir;

    @Test
    @Timeout(value = 15, unit = TimeUnit.SECONDS)
    void shouldShareOneDriverAndDeleteItsDirectoryWhenTheOwnerCloses() {
        Path directory = tempDir.resolve("aeron");
        MediaDriverHost.Settings settings = MediaDriverHost.Settings.defaults().withAeronDirectory(directory)
                .withTermLengthBytes(1 << 20);
        try (MediaDriverHost owner = MediaDriverHost.start(settings)) {
            assertTrue(owner.ownsDriver(), "AUTO launches a driver where none runs");
            try (MediaDriverHost guest = MediaDriverHost.start(settings)) {
                assertFalse(guest.ownsDriver(), "AUTO joins the running driver");
            }
            assertTrue(owner.aeron().nextCorrelationId() > 0, "the owner's client survives the guest");
        }
        assertFalse(Files.exists(directory), "an owned driver deletes its directory on shutdown");
    }

    @Test
    @Timeout(value = 15, unit = TimeUnit.SECONDS)
    void shouldFailClearlyWhenNoSharedDriverRuns() {
        MediaDriverHost.Settings settings = MediaDriverHost.Settings.defaults()
                .withAeronDirectory(tempDir.resolve("nobody-home"))
                .withMode(MediaDriverHost.DriverMode.EXTERNAL)
                .withDriverTimeoutMillis(500);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> MediaDriverHost.start(settings));
        assertTrue(e.getMessage().startsWith("no Aeron media driver answered in "), e.getMessage());
    }

    @Test
    @Timeout(value = 5, unit = TimeUnit.SECONDS)
    void shouldParseStandaloneDriverArguments() {
        MediaDriverHost.Settings settings = MediaDriverHost.parseArgs(new String[] {
                "--aeron-dir=/dev/shm/x", "--term-length=4m", "--threading-mode=dedicated",
                "--max-park-micros=500", "--sparse-term-files=true"});
        assertEquals(Path.of("/dev/shm/x"), settings.aeronDirectory());
        assertEquals(MediaDriverHost.DriverMode.EMBEDDED, settings.mode());
        assertEquals(4 << 20, settings.termLengthBytes());
        assertEquals(ThreadingMode.DEDICATED, settings.threadingMode());
        assertEquals(500_000, settings.driverIdle().maxParkNanos());
        assertTrue(settings.sparseTermFiles());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MediaDriverHost.parseArgs(new String[] {"--term-length=3m"}));
        assertTrue(e.getMessage().startsWith("term-length must be a power of two"), e.getMessage());
    }
}
