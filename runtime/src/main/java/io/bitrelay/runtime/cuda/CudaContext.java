package io.bitrelay.runtime.cuda;

import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.JCudaDriver;

/**
 * The device's primary context, retained for this object's lifetime. The primary context (not one of our
 * own from cuCtxCreate) is the one the CUDA runtime inside cuBLASLt uses too, so driver-API allocations,
 * our kernels and cuBLASLt GEMMs share one address space and stream set.
 *
 * <p>A context is current per thread: call {@link #makeCurrent()} on every thread that issues CUDA work
 * (a stage engine's compute thread) before its first call.
 */
public final class CudaContext implements AutoCloseable {
    private final CudaDevice device;
    private final CUdevice handle;
    private CUcontext context;

    private CudaContext(CudaDevice device, CUdevice handle, CUcontext context) {
        this.device = device;
        this.handle = handle;
        this.context = context;
    }

    /** Retains cuda:{@code ordinal}'s primary context and makes it current on the calling thread. */
    public static CudaContext open(int ordinal) {
        CudaDevice device = CudaDevice.get(ordinal);
        CUdevice handle = CudaDevice.handle(ordinal);
        CUcontext context = new CUcontext();
        JCudaDriver.cuDevicePrimaryCtxRetain(context, handle);
        CudaContext opened = new CudaContext(device, handle, context);
        opened.makeCurrent();
        return opened;
    }

    public CudaDevice device() {
        return device;
    }

    /** Binds this context to the calling thread. */
    public void makeCurrent() {
        JCudaDriver.cuCtxSetCurrent(live());
    }

    /** Waits for all work of this context, on every stream. */
    public void synchronize() {
        makeCurrent();
        JCudaDriver.cuCtxSynchronize();
    }

    /** Free and total device memory, in bytes. */
    public long[] memoryInfo() {
        makeCurrent();
        long[] free = new long[1];
        long[] total = new long[1];
        JCudaDriver.cuMemGetInfo(free, total);
        return new long[] {free[0], total[0]};
    }

    private CUcontext live() {
        if (context == null) {
            throw new IllegalStateException("CUDA context of " + device.name() + " is closed");
        }
        return context;
    }

    @Override
    public void close() {
        if (context != null) {
            JCudaDriver.cuDevicePrimaryCtxRelease(handle);
            context = null;
        }
    }
}
