package io.bitrelay.runtime.cuda.cublaslt;

import io.bitrelay.runtime.cuda.CudaUnavailableException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Predicate;

/**
 * Where libcublasLt.so.13 comes from, first match wins:
 * <ol>
 *   <li>system property {@value #PROPERTY},</li>
 *   <li>environment variable {@value #ENV},</li>
 *   <li>HOCON {@value #CONFIG_KEY} (configs/bitrelay.conf; "" = unset),</li>
 *   <li>{@link #DEFAULT_PATH} if that file exists,</li>
 *   <li>the dynamic linker's search path for {@value #SONAME} (LD_LIBRARY_PATH, ldconfig).</li>
 * </ol>
 * A path named explicitly (1-3) must exist: a typo is an error naming where it came from, never a silent
 * fallback to another library.
 */
public final class CublasLtLocator {
    public static final String PROPERTY = "bitrelay.cuda.cublaslt-path";
    public static final String ENV = "BITRELAY_CUBLASLT_PATH";
    public static final String CONFIG_KEY = "bitrelay.cuda.cublaslt-path";
    public static final Path DEFAULT_PATH = Path.of("/usr/local/cuda-13.0/targets/x86_64-linux/lib/libcublasLt.so.13");
    public static final String SONAME = "libcublasLt.so.13";

    /** Where to load cuBLASLt from: a file, or a soname for the dynamic linker to find ({@code path} null). */
    public record Location(Path path, String soname, String source) {
        public String describe() {
            return path != null ? path + " (" + source + ")" : soname + " on the library search path";
        }
    }

    private CublasLtLocator() {
    }

    /** From this process's system properties, environment and the configured path (null or blank: none). */
    public static Location locate(String configured) {
        return locate(System.getProperty(PROPERTY), System.getenv(ENV), configured, Files::isRegularFile);
    }

    /** The lookup order above, with its inputs given (for tests). */
    static Location locate(String property, String env, String configured, Predicate<Path> exists) {
        if (!isBlank(property)) {
            return explicit(property, "-D" + PROPERTY, exists);
        }
        if (!isBlank(env)) {
            return explicit(env, "$" + ENV, exists);
        }
        if (!isBlank(configured)) {
            return explicit(configured, CONFIG_KEY, exists);
        }
        if (exists.test(DEFAULT_PATH)) {
            return new Location(DEFAULT_PATH, SONAME, "default path");
        }
        return new Location(null, SONAME, "library search path");
    }

    private static Location explicit(String value, String source, Predicate<Path> exists) {
        Path path = Path.of(value.trim());
        if (!exists.test(path)) {
            throw new CudaUnavailableException("cuBLASLt not found: " + source + " names " + path + ", which is not a file");
        }
        return new Location(path, SONAME, source);
    }

    private static boolean isBlank(String value) {
        return value == null || value.isBlank();
    }
}
