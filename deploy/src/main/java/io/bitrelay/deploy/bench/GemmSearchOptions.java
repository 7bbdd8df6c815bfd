package io.bitrelay.deploy.bench;

import io.bitrelay.runtime.cuda.CudaSettings;
import io.bitrelay.runtime.cuda.cublaslt.GemmSearch;
import picocli.CommandLine.Option;

import java.time.Duration;

/** How the GPU benches tune their GEMMs: the same choices as {@code bitrelay.cuda.gemm-search} and its tuning cache. */
final class GemmSearchOptions {
    @Option(names = "--gemm-search", defaultValue = "variations",
            description = "heuristics (cuBLASLt's answers only) or variations (also their one-attribute neighbours: tile, "
                    + "stages, split-K, swizzle, cluster shape) (default: ${DEFAULT-VALUE}).")
    String mode;

    @Option(names = "--gemm-search-budget-ms", defaultValue = "1500",
            description = "Time the variation walk may take per GEMM shape and precision (default: ${DEFAULT-VALUE}).")
    long budgetMillis;

    @Option(names = "--gemm-tuning-cache", paramLabel = "DIR", defaultValue = "",
            description = "Reuse and keep tuned GEMM choices in DIR (bitrelay.cuda.gemm-tuning-cache; default: none).")
    String tuningCache;

    /** The search these options name; a bad mode or budget is refused with the option's meaning. */
    GemmSearch search() {
        return CudaSettings.gemmSearch(mode, Duration.ofMillis(budgetMillis));
    }

    /** The default CUDA settings with this search and tuning cache. */
    CudaSettings settings() {
        return CudaSettings.defaults().withGemmSearch(search()).withGemmTuningCache(tuningCache);
    }
}
