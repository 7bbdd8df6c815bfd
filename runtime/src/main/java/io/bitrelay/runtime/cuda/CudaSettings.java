package io.bitrelay.runtime.cuda;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import io.bitrelay.runtime.cuda.cublaslt.GemmSearch;

import java.time.Duration;

/**
 * What a GPU stage runs with, from {@code bitrelay.cuda}: where cuBLASLt is, its workspace per GEMM runner, and how
 * far GEMM tuning looks past cuBLASLt's heuristics.
 *
 * @param cublasLtPath       the configured library path, blank for the default lookup ({@code CublasLtLocator})
 * @param gemmWorkspaceBytes cuBLASLt workspace of each GEMM runner
 * @param gemmSearch         heuristics only, or their neighbourhood too within a budget per shape
 * @param gemmTuningCache    directory of tuned-GEMM files reused across restarts, blank for none
 */
public record CudaSettings(String cublasLtPath, long gemmWorkspaceBytes, GemmSearch gemmSearch, String gemmTuningCache) {
    public static final String PREFIX = "bitrelay.cuda.";
    private static final long DEFAULT_WORKSPACE_BYTES = 32L << 20;

    public CudaSettings {
        if (gemmWorkspaceBytes < 0) {
            throw new IllegalArgumentException(PREFIX + "gemm-workspace must not be negative, got " + gemmWorkspaceBytes);
        }
    }

    /** Default library lookup, 32 MiB, heuristics, no tuning cache (what tests and benchmarks start from). */
    public static CudaSettings defaults() {
        return new CudaSettings("", DEFAULT_WORKSPACE_BYTES, GemmSearch.HEURISTICS, "");
    }

    /** From {@code root}'s {@code bitrelay.cuda} block; a bad value is refused by its key. */
    public static CudaSettings from(Config root) {
        try {
            Config cuda = root.getConfig("bitrelay.cuda");
            return new CudaSettings(cuda.getString("cublaslt-path"), cuda.getBytes("gemm-workspace"),
                    gemmSearch(cuda.getString("gemm-search"), cuda.getDuration("gemm-search-budget")),
                    cuda.getString("gemm-tuning-cache"));
        } catch (ConfigException e) {
            throw new IllegalArgumentException("bad " + PREFIX + "* setting: " + e.getMessage(), e);
        }
    }

    /** {@code heuristics}, or {@code variations} within {@code budget} per shape. */
    public static GemmSearch gemmSearch(String mode, Duration budget) {
        return switch (mode) {
            case "heuristics" -> GemmSearch.HEURISTICS;
            case "variations" -> {
                if (budget.isNegative() || budget.isZero()) {
                    throw new IllegalArgumentException(PREFIX + "gemm-search-budget must be positive for variations, got "
                            + budget);
                }
                yield GemmSearch.variations(budget);
            }
            default -> throw new IllegalArgumentException(PREFIX + "gemm-search must be heuristics or variations, got '"
                    + mode + "'");
        };
    }

    public CudaSettings withGemmSearch(GemmSearch search) {
        return new CudaSettings(cublasLtPath, gemmWorkspaceBytes, search, gemmTuningCache);
    }

    public CudaSettings withGemmTuningCache(String directory) {
        return new CudaSettings(cublasLtPath, gemmWorkspaceBytes, gemmSearch, directory);
    }
}
