package io.bitrelay.runtime.cuda;

import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/** A non-blocking stream (no implicit sync with the legacy default stream); work on it runs in order. */
public final class CudaStream implements AutoCloseable {
    private CUstream stream;

    private CudaStream(CUstream stream) {
        this.stream = stream;
    }

    /** A new stream in the calling thread's current context. */
    public static CudaStream create() {
        CUstream stream = new CUstream();
        JCudaDriver.cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING);
        return new CudaStream(stream);
    }

    public CUstream handle() {
        if (stream == null) {
            throw new IllegalStateException("stream is closed");
        }
        return stream;
    }

    /** The cudaStream_t value, for libraries called through java.lang.foreign. */
    public long address() {
        return NativeAddress.of(handle());
    }

    /** Blocks until everything queued on this stream has run. */
    public void synchronize() {
        JCudaDriver.cuStreamSynchronize(handle());
    }

    @Override
    public void close() {
        if (stream != null) {
            JCudaDriver.cuStreamDestroy(stream);
            stream = null;
        }
    }
}
