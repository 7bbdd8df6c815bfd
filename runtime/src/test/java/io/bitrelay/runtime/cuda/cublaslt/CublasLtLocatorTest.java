package io.bitrelay.runtime.cuda.cublaslt;

import io.bitrelay.runtime.cuda.CudaUnavailableException;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CublasLtLocatorTest {
    private static final Path PROPERTY_PATH = Path.of("/p/libcublasLt.so.13");
    private static final Path ENV_PATH = Path.of("/e/libcublasLt.so.13");
    private static final Path CONFIG_PATH = Path.of("/c/libcublasLt.so.13");

    @Test
    void shouldPreferPropertyThenEnvironmentThenConfigThenDefault() {
        Set<Path> all = Set.of(PROPERTY_PATH, ENV_PATH, CONFIG_PATH, CublasLtLocator.DEFAULT_PATH);
        assertEquals(PROPERTY_PATH, CublasLtLocator.locate("/p/libcublasLt.so.13", "/e/libcublasLt.so.13",
                "/c/libcublasLt.so.13", all::contains).path());
        assertEquals(ENV_PATH, CublasLtLocator.locate(null, "/e/libcublasLt.so.13", "/c/libcublasLt.so.13",
                all::contains).path());
        assertEquals(CONFIG_PATH, CublasLtLocator.locate(" ", null, "/c/libcublasLt.so.13", all::contains).path());
        assertEquals(CublasLtLocator.DEFAULT_PATH, CublasLtLocator.locate(null, null, "", all::contains).path());
    }

    @Test
    void shouldFallBackToTheLibrarySearchPathWhenNothingIsConfiguredOrInstalled() {
        CublasLtLocator.Location location = CublasLtLocator.locate(null, null, null, path -> false);
        assertNull(location.path());
        assertEquals(CublasLtLocator.SONAME, location.soname());
        assertTrue(location.describe().contains("library search path"));
    }

    @Test
    void shouldNameTheSourceOfAConfiguredPathThatDoesNotExist() {
        CudaUnavailableException thrown = assertThrows(CudaUnavailableException.class,
                () -> CublasLtLocator.locate(null, "/nowhere/libcublasLt.so.13", null, path -> false));
        assertTrue(thrown.getMessage().contains(CublasLtLocator.ENV), thrown.getMessage());
        assertTrue(thrown.getMessage().contains("/nowhere/libcublasLt.so.13"), thrown.getMessage());
    }

    @Test
    void shouldSayCublasLtIsMissingWhenTheLibraryCannotBeLoaded() {
        CudaUnavailableException thrown = assertThrows(CudaUnavailableException.class, () -> CublasLtLibrary.loadUncached(
                new CublasLtLocator.Location(null, "libbitrelay-no-such-cublaslt.so.13", "test")));
        assertTrue(thrown.getMessage().startsWith("cuBLASLt not found"), thrown.getMessage());
    }
}
