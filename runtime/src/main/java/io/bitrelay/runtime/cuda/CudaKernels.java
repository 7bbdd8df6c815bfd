package io.bitrelay.runtime.cuda;

import io.bitrelay.kernels.KernelImage;
import jcuda.driver.CUfunction;

/**
 * bitrelay's own kernels (the fatbin from the kernels module), loaded once into a context. The launchers in
 * {@code io.bitrelay.runtime.cuda.kernels} look their functions up here.
 */
public final class CudaKernels implements AutoCloseable {
    private final CudaModule module;

    private CudaKernels(CudaModule module) {
        this.module = module;
    }

    /** Loads the fatbin into the calling thread's current context. */
    public static CudaKernels load() {
        byte[] image = KernelImage.load().orElseThrow(() -> new CudaUnavailableException(
                "CUDA kernels missing: " + KernelImage.RESOURCE + " is not on the classpath (bitrelay was built "
                        + "without nvcc; rebuild with CUDA's nvcc on PATH)"));
        return new CudaKernels(CudaModule.load(image));
    }

    public CUfunction function(String name) {
        return module.function(name);
    }

    /** A launcher of the kernel {@code name}, which takes {@code arguments} parameters, with its own reusable argument block. */
    public KernelLaunch launcher(String name, int arguments) {
        return new KernelLaunch(function(name), name, arguments);
    }

    @Override
    public void close() {
        module.close();
    }
}
