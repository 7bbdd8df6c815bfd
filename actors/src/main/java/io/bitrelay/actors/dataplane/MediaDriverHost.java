package io.bitrelay.actors.dataplane;

import io.aeron.Aeron;
import io.aeron.CommonContext;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import io.aeron.driver.exceptions.ActiveDriverException;
import io.aeron.exceptions.DriverTimeoutException;
import io.aeron.logbuffer.LogBufferDescriptor;
import org.agrona.CloseHelper;
import org.agrona.concurrent.ShutdownSignalBarrier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The Aeron media driver of this host and this JVM's client of it.
 *
 * <p>One driver serves every JVM on a host: IPC between two processes only works through a shared driver
 * directory. For several worker JVMs on one host, run the driver as its own process
 * ({@link #main}, or {@link #runStandalone} from the launcher) and start the workers in
 * {@link DriverMode#EXTERNAL}; an {@link DriverMode#EMBEDDED} driver dies with the JVM that owns it and
 * takes every other JVM's links with it.
 *
 * <p>Memory: each publication maps a log of 3 terms (3 × {@code termLengthBytes}, 48 MiB at the default
 * 16 MiB) in the driver directory (tmpfs under /dev/shm on Linux); a UDP link maps a second log on the
 * receiving host.
 */
public final class MediaDriverHost implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(MediaDriverHost.class);

    /** Where this JVM's driver comes from. */
    public enum DriverMode {
        /** Launch a driver owned by this JVM; fail if one is already running in the directory. */
        EMBEDDED,
        /** Connect to a driver already running in the directory (a shared driver process). */
        EXTERNAL,
        /** Use the driver running in the directory if there is one, otherwise launch one owned by this JVM. */
        AUTO
    }

    /**
     * @param aeronDirectory      driver directory shared by every JVM on the host (default
     *                            /dev/shm/bitrelay-aeron-USER, or under java.io.tmpdir without /dev/shm)
     * @param mode                launch, connect or either (default AUTO)
     * @param threadingMode       driver threads (default SHARED: conductor, sender and receiver on one
     *                            thread, the fewest cores taken from compute)
     * @param termLengthBytes     term buffer length of IPC and UDP publications, a power of two in
     *                            64 KiB..1 GiB (default 16 MiB); the largest single Aeron message is
     *                            min(term / 8, 16 MiB), which sets the chunk size of big frames
     * @param ipcMtuBytes         fragment size of IPC publications, a multiple of 32 in 128..65504 (default
     *                            65504: a 1 MiB frame is 17 fragments instead of 745 at Aeron's 1408;
     *                            IpcThroughputProbe measured ~2.9 vs ~3.5-4.0 GiB/s of 1 MiB frames on a
     *                            busy 2-core VM); UDP links set their MTU in their channel ({@link LinkChannels})
     * @param sparseTermFiles     map term files sparsely: pages are taken when first written instead of up
     *                            front (default false: no page faults on the hot path)
     * @param driverIdle          how idle driver threads wait (default {@link IdleSettings#backoff()})
     * @param driverTimeoutMillis how long a client waits for a driver to answer, and how long a driver
     *                            waits before it declares a silent client dead (default 10 s)
     */
    public record Settings(Path aeronDirectory, DriverMode mode, ThreadingMode threadingMode, int termLengthBytes,
                           int ipcMtuBytes, boolean sparseTermFiles, IdleSettings driverIdle,
                           long driverTimeoutMillis) {

        public static final int DEFAULT_TERM_LENGTH_BYTES = 16 * 1024 * 1024;

        public Settings {
            if (aeronDirectory == null) {
                throw new IllegalArgumentException("aeron-dir must be set");
            }
            if (mode == null || threadingMode == null || driverIdle == null) {
                throw new IllegalArgumentException("driver mode, threading-mode and idle settings must be set");
            }
            if (termLengthBytes < LogBufferDescriptor.TERM_MIN_LENGTH
                    || termLengthBytes > LogBufferDescriptor.TERM_MAX_LENGTH
                    || Integer.bitCount(termLengthBytes) != 1) {
                throw new IllegalArgumentException("term-length must be a power of two in 64 KiB..1 GiB, got "
                        + termLengthBytes);
            }
            if (ipcMtuBytes < LinkChannels.MIN_MTU_BYTES || ipcMtuBytes > LinkChannels.MAX_MTU_BYTES
                    || ipcMtuBytes % 32 != 0) {
                throw new IllegalArgumentException("ipc-mtu must be a multiple of 32 in "
                        + LinkChannels.MIN_MTU_BYTES + ".." + LinkChannels.MAX_MTU_BYTES + ", got " + ipcMtuBytes);
            }
            if (driverTimeoutMillis < 1) {
                throw new IllegalArgumentException("driver-timeout-millis must be >= 1, got " + driverTimeoutMillis);
            }
        }

        public static Settings defaults() {
            return new Settings(defaultAeronDirectory(), DriverMode.AUTO, ThreadingMode.SHARED,
                    DEFAULT_TERM_LENGTH_BYTES, LinkChannels.MAX_MTU_BYTES, false, IdleSettings.backoff(), 10_000);
        }

        public Settings withAeronDirectory(Path directory) {
            return new Settings(directory, mode, threadingMode, termLengthBytes, ipcMtuBytes,
                    sparseTermFiles, driverIdle, driverTimeoutMillis);
        }

        public Settings withMode(DriverMode newMode) {
            return new Settings(aeronDirectory, newMode, threadingMode, termLengthBytes, ipcMtuBytes,
                    sparseTermFiles, driverIdle, driverTimeoutMillis);
        }

        public Settings withThreadingMode(ThreadingMode newThreadingMode) {
            return new Settings(aeronDirectory, mode, newThreadingMode, termLengthBytes, ipcMtuBytes,
                    sparseTermFiles, driverIdle, driverTimeoutMillis);
        }

        public Settings withTermLengthBytes(int bytes) {
            return new Settings(aeronDirectory, mode, threadingMode, bytes, ipcMtuBytes,
                    sparseTermFiles, driverIdle, driverTimeoutMillis);
        }

        public Settings withIpcMtuBytes(int mtu) {
            return new Settings(aeronDirectory, mode, threadingMode, termLengthBytes, mtu,
                    sparseTermFiles, driverIdle, driverTimeoutMillis);
        }

        public Settings withSparseTermFiles(boolean sparse) {
            return new Settings(aeronDirectory, mode, threadingMode, termLengthBytes, ipcMtuBytes,
                    sparse, driverIdle, driverTimeoutMillis);
        }

        public Settings withDriverIdle(IdleSettings idle) {
            return new Settings(aeronDirectory, mode, threadingMode, termLengthBytes, ipcMtuBytes,
                    sparseTermFiles, idle, driverTimeoutMillis);
        }

        public Settings withDriverTimeoutMillis(long millis) {
            return new Settings(aeronDirectory, mode, threadingMode, termLengthBytes, ipcMtuBytes,
                    sparseTermFiles, driverIdle, millis);
        }

        static Path defaultAeronDirectory() {
            String name = "bitrelay-aeron-" + System.getProperty("user.name", "default");
            Path shm = Path.of("/dev/shm");
            return Files.isDirectory(shm) ? shm.resolve(name) : Path.of(System.getProperty("java.io.tmpdir"), name);
        }
    }

    private final Settings settings;
    private final MediaDriver driver; // null when the driver belongs to another process
    private final Aeron aeron;

    private MediaDriverHost(Settings settings, MediaDriver driver, Aeron aeron) {
        this.settings = settings;
        this.driver = driver;
        this.aeron = aeron;
    }

    /** Launches or finds the driver as {@code settings.mode()} says, then connects this JVM's client. */
    public static MediaDriverHost start(Settings settings) {
        MediaDriver driver = switch (settings.mode()) {
            case EMBEDDED -> launchDriver(settings);
            case EXTERNAL -> null;
            case AUTO -> isDriverActive(settings) ? null : launchDriverUnlessRaced(settings);
        };
        try {
            Aeron aeron = Aeron.connect(clientContext(settings));
            log.info("Aeron client connected to {} driver in {}", driver != null ? "embedded" : "shared",
                    settings.aeronDirectory());
            return new MediaDriverHost(settings, driver, aeron);
        } catch (DriverTimeoutException e) {
            CloseHelper.quietClose(driver);
            throw new IllegalStateException("no Aeron media driver answered in " + settings.aeronDirectory()
                    + " within " + settings.driverTimeoutMillis() + " ms (mode " + settings.mode()
                    + "); start the shared driver with MediaDriverHost.main", e);
        } catch (RuntimeException e) {
            CloseHelper.quietClose(driver);
            throw e;
        }
    }

    /**
     * Runs a driver owned by this process until SIGINT/SIGTERM, then shuts it down and deletes its
     * directory. For the launcher's "run the host's shared driver" command.
     */
    public static void runStandalone(Settings settings) {
        try (ShutdownSignalBarrier barrier = new ShutdownSignalBarrier();
             MediaDriver driver = launchDriver(settings)) {
            log.info("shared Aeron media driver running in {} ({}, term {} bytes); stop with SIGTERM",
                    driver.aeronDirectoryName(), settings.threadingMode(), settings.termLengthBytes());
            barrier.await();
            log.info("shared Aeron media driver in {} shutting down", driver.aeronDirectoryName());
        }
    }

    /**
     * Standalone shared driver. Arguments (all optional): {@code --aeron-dir=PATH},
     * {@code --term-length=16m}, {@code --ipc-mtu=65504}, {@code --threading-mode=SHARED|SHARED_NETWORK|DEDICATED},
     * {@code --sparse-term-files=true|false}, {@code --max-park-micros=1000},
     * {@code --driver-timeout-millis=10000}.
     */
    public static void main(String[] args) {
        runStandalone(parseArgs(args));
    }

    static Settings parseArgs(String[] args) {
        Settings settings = Settings.defaults().withMode(DriverMode.EMBEDDED);
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (!arg.startsWith("--") || eq < 0) {
                throw new IllegalArgumentException("expected --key=value, got '" + arg + "'");
            }
            String key = arg.substring(2, eq);
            String value = arg.substring(eq + 1);
            settings = switch (key) {
                case "aeron-dir" -> settings.withAeronDirectory(Path.of(value));
                case "term-length" -> settings.withTermLengthBytes(Math.toIntExact(parseBytes(key, value)));
                case "threading-mode" -> settings.withThreadingMode(
                        ThreadingMode.valueOf(value.toUpperCase(Locale.ROOT)));
                case "ipc-mtu" -> settings.withIpcMtuBytes(Integer.parseInt(value));
                case "sparse-term-files" -> settings.withSparseTermFiles(Boolean.parseBoolean(value));
                case "max-park-micros" -> settings.withDriverIdle(
                        settings.driverIdle().withMaxParkNanos(Long.parseLong(value) * 1_000));
                case "driver-timeout-millis" -> settings.withDriverTimeoutMillis(Long.parseLong(value));
                default -> throw new IllegalArgumentException("unknown driver setting --" + key);
            };
        }
        return settings;
    }

    /** "16m", "64k", "1g" or plain bytes. */
    static long parseBytes(String key, String value) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        long scale = switch (v.isEmpty() ? ' ' : v.charAt(v.length() - 1)) {
            case 'k' -> 1L << 10;
            case 'm' -> 1L << 20;
            case 'g' -> 1L << 30;
            default -> 1;
        };
        try {
            return Long.parseLong(scale == 1 ? v : v.substring(0, v.length() - 1)) * scale;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + " must be a byte count like 16m, got '" + value + "'", e);
        }
    }

    public Aeron aeron() {
        return aeron;
    }

    public Settings settings() {
        return settings;
    }

    public Path aeronDirectory() {
        return settings.aeronDirectory();
    }

    /** True when this JVM launched the driver (and closing this host stops it). */
    public boolean ownsDriver() {
        return driver != null;
    }

    /** Closes the client, then the driver if this JVM owns it (which deletes its directory). */
    @Override
    public void close() {
        CloseHelper.closeAll(aeron, driver);
    }

    private static boolean isDriverActive(Settings settings) {
        return CommonContext.isDriverActive(settings.aeronDirectory().toFile(), settings.driverTimeoutMillis(),
                message -> log.debug("driver probe: {}", message));
    }

    private static MediaDriver launchDriverUnlessRaced(Settings settings) {
        try {
            return launchDriver(settings);
        } catch (ActiveDriverException e) {
            log.info("another process launched the driver in {} first; using it", settings.aeronDirectory());
            return null;
        }
    }

    private static MediaDriver launchDriver(Settings settings) {
        IdleSettings idle = settings.driverIdle();
        MediaDriver.Context context = new MediaDriver.Context()
                .aeronDirectoryName(settings.aeronDirectory().toString())
                .threadingMode(settings.threadingMode())
                .sharedIdleStrategy(idle.newIdleStrategy())
                .sharedNetworkIdleStrategy(idle.newIdleStrategy())
                .conductorIdleStrategy(idle.newIdleStrategy())
                .senderIdleStrategy(idle.newIdleStrategy())
                .receiverIdleStrategy(idle.newIdleStrategy())
                .publicationTermBufferLength(settings.termLengthBytes())
                .ipcTermBufferLength(settings.termLengthBytes())
                .ipcMtuLength(settings.ipcMtuBytes())
                .termBufferSparseFile(settings.sparseTermFiles())
                .driverTimeoutMs(settings.driverTimeoutMillis())
                .dirDeleteOnStart(false) // a stale directory is recreated; a live driver's is never deleted
                .dirDeleteOnShutdown(true)
                .errorHandler(e -> log.error("Aeron media driver error", e));
        MediaDriver driver = MediaDriver.launch(context);
        log.info("launched Aeron media driver in {} ({}, term {} bytes, IPC MTU {} bytes, idle {})",
                driver.aeronDirectoryName(), settings.threadingMode(), settings.termLengthBytes(),
                settings.ipcMtuBytes(), idle);
        return driver;
    }

    private static Aeron.Context clientContext(Settings settings) {
        return new Aeron.Context()
                .aeronDirectoryName(settings.aeronDirectory().toString())
                .driverTimeoutMs(settings.driverTimeoutMillis())
                .clientName("bitrelay")
                .errorHandler(e -> log.warn("Aeron client error", e));
    }
}
