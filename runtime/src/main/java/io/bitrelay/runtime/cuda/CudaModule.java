package io.bitrelay.runtime.cuda;

import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;

import java.util.HashMap;
import java.util.Map;

/**
 * A loaded module (fatbin, cubin or PTX image) and the kernels looked up in it. Loaded with cuModuleLoadData
 * from memory: the driver picks the SASS matching the GPU, else JIT-compiles the PTX. (cuModuleLoadFatBinary
 * answered CUDA_ERROR_INVALID_HANDLE for our fatbin on an H200 with driver 580.)
 */
public final class CudaModule implements AutoCloseable {
    private CUmodule module;
    private final Map<String, CUfunction> functions = new HashMap<>();

    private CudaModule(CUmodule module) {
        this.module = module;
    }

    /** Loads {@code image} into the calling thread's current context. */
    public static CudaModule load(byte[] image) {
        CUmodule module = new CUmodule();
        try {
            JCudaDriver.cuModuleLoadData(module, image);
        } catch (RuntimeException e) {
            throw new CudaUnavailableException("cannot load the kernels module (" + image.length + " bytes): " + e.getMessage()
                    + "; the fatbin holds sm_80, sm_90a and compute_90 PTX, so an older GPU or driver cannot run it", e);
        }
        return new CudaModule(module);
    }

    /** The kernel named {@code name} (an extern "C" symbol); fails with the name if the module lacks it. */
    public synchronized CUfunction function(String name) {
        if (module == null) {
            throw new IllegalStateException("module is closed");
        }
        return functions.computeIfAbsent(name, n -> {
            CUfunction function = new CUfunction();
            try {
                JCudaDriver.cuModuleGetFunction(function, module, n);
            } catch (RuntimeException e) {
                throw new IllegalStateException("kernel '" + n + "' is not in the module: " + e.getMessage(), e);
            }
            return function;
        });
    }

    @Override
    public synchronized void close() {
        if (module != null) {
            JCudaDriver.cuModuleUnload(module);
            module = null;
            functions.clear();
        }
    }
}
