package io.bitrelay.runtime.cuda;

import jcuda.Pointer;
import jcuda.driver.JCudaDriver;

import java.lang.foreign.MemorySegment;

/**
 * Page-locked host memory (cuMemAllocHost), the only host memory whose copies to and from the device run
 * asynchronously at full PCIe/NVLink speed. Read and write it through {@link #segment()}; owned by this
 * object until {@link #close()}, after which the segment must not be touched.
 */
public final class PinnedHostBuffer implements AutoCloseable {
    private final long byteSize;
    private Pointer pointer;
    private final MemorySegment segment;

    private PinnedHostBuffer(Pointer pointer, long byteSize) {
        this.pointer = pointer;
        this.byteSize = byteSize;
        this.segment = MemorySegment.ofAddress(NativeAddress.of(pointer)).reinterpret(byteSize);
    }

    /** {@code byteSize} bytes of pinned memory in the current context. */
    public static PinnedHostBuffer allocate(long byteSize) {
        if (byteSize <= 0) {
            throw new IllegalArgumentException("pinned allocation of " + byteSize + " bytes");
        }
        Pointer pointer = new Pointer();
        JCudaDriver.cuMemAllocHost(pointer, byteSize);
        return new PinnedHostBuffer(pointer, byteSize);
    }

    public long byteSize() {
        return byteSize;
    }

    /** The memory as a segment (valid until close). */
    public MemorySegment segment() {
        pointer();
        return segment;
    }

    Pointer pointer() {
        if (pointer == null) {
            throw new IllegalStateException("pinned host buffer is closed");
        }
        return pointer;
    }

    void checkRange(long offset, long bytes) {
        if (offset < 0 || bytes < 0 || offset + bytes > byteSize) {
            throw new IndexOutOfBoundsException("bytes [" + offset + ", " + (offset + bytes) + ") outside a pinned buffer of "
                    + byteSize);
        }
    }

    @Override
    public void close() {
        if (pointer != null) {
            JCudaDriver.cuMemFreeHost(pointer);
            pointer = null;
        }
    }
}
