package io.bitrelay.runtime.cuda;

import io.bitrelay.runtime.cuda.cublaslt.CublasLt;
import io.bitrelay.runtime.cuda.cublaslt.CublasLtLibrary;
import io.bitrelay.runtime.cuda.cublaslt.CublasLtLocator;
import org.junit.jupiter.api.Assumptions;

/**
 * One CUDA context (cuda:0), kernel module and cuBLASLt handle shared by the GPU tests of this JVM. Where no
 * GPU is usable, {@link #requireGpu()} skips the calling test with the probe's reason, printed so that CI
 * logs say why the GPU tests did not run.
 */
public final class GpuTestSupport {
    private static CudaContext context;
    private static CudaKernels kernels;
    private static CublasLt cublasLt;

    private GpuTestSupport() {
    }

    /** Skips the test (JUnit assumption) unless a GPU is usable; otherwise makes cuda:0 current. */
    public static synchronized CudaContext requireGpu() {
        CudaProbe probe = CudaProbe.get();
        if (!probe.available()) {
            System.out.println("[GPU test skipped] " + probe.reason());
            Assumptions.assumeTrue(false, probe.reason());
        }
        if (context == null) {
            context = CudaContext.open(0);
            System.out.println("[GPU tests] on " + context.device().describe());
        }
        context.makeCurrent();
        return context;
    }

    public static synchronized CudaKernels kernels() {
        requireGpu();
        if (kernels == null) {
            kernels = CudaKernels.load();
        }
        return kernels;
    }

    /** cuBLASLt from the usual locations; a GPU machine without it fails the test (it is part of the backend). */
    public static synchronized CublasLt cublasLt() {
        requireGpu();
        if (cublasLt == null) {
            cublasLt = CublasLt.create(CublasLtLibrary.load(CublasLtLocator.locate("")));
        }
        return cublasLt;
    }
}
