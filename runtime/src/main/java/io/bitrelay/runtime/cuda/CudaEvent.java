package io.bitrelay.runtime.cuda;

import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.JCudaDriver;

/** A timing event: record two on a stream, then {@link #elapsedMillis} between them. */
public final class CudaEvent implements AutoCloseable {
    private CUevent event;

    private CudaEvent(CUevent event) {
        this.event = event;
    }

    public static CudaEvent create() {
        CUevent event = new CUevent();
        JCudaDriver.cuEventCreate(event, CUevent_flags.CU_EVENT_DEFAULT);
        return new CudaEvent(event);
    }

    public void record(CudaStream stream) {
        JCudaDriver.cuEventRecord(handle(), stream.handle());
    }

    public void synchronize() {
        JCudaDriver.cuEventSynchronize(handle());
    }

    /** GPU time from {@code start} to {@code end} (both recorded; waits for {@code end}), about 0.5 µs resolution. */
    public static float elapsedMillis(CudaEvent start, CudaEvent end) {
        end.synchronize();
        float[] millis = new float[1];
        JCudaDriver.cuEventElapsedTime(millis, start.handle(), end.handle());
        return millis[0];
    }

    private CUevent handle() {
        if (event == null) {
            throw new IllegalStateException("event is closed");
        }
        return event;
    }

    @Override
    public void close() {
        if (event != null) {
            JCudaDriver.cuEventDestroy(event);
            event = null;
        }
    }
}
