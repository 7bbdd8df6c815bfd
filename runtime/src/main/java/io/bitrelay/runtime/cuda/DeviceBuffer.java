package io.bitrelay.runtime.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * Device memory from cuMemAlloc (256-byte aligned), owned by this object until {@link #close()}. Kernels and
 * cuBLASLt take its {@link #address()} (plus a byte offset for a slice). Host copies go from and to native
 * memory segments (off-heap, or a {@link PinnedHostBuffer} for asynchronous copies that overlap compute).
 */
public final class DeviceBuffer implements AutoCloseable {
    /** Host copies are split into chunks a ByteBuffer can describe. */
    private static final long COPY_CHUNK_BYTES = 1L << 30;

    private final long byteSize;
    private CUdeviceptr pointer;
    private final long address;

    private DeviceBuffer(CUdeviceptr pointer, long byteSize) {
        this.pointer = pointer;
        this.byteSize = byteSize;
        this.address = NativeAddress.of(pointer);
    }

    /** {@code byteSize} bytes of device memory in the current context; contents undefined. */
    public static DeviceBuffer allocate(long byteSize) {
        if (byteSize <= 0) {
            throw new IllegalArgumentException("device allocation of " + byteSize + " bytes");
        }
        CUdeviceptr pointer = new CUdeviceptr();
        try {
            JCudaDriver.cuMemAlloc(pointer, byteSize);
        } catch (RuntimeException e) {
            throw new IllegalStateException("cuMemAlloc of " + byteSize + " bytes failed: " + e.getMessage(), e);
        }
        return new DeviceBuffer(pointer, byteSize);
    }

    public long byteSize() {
        return byteSize;
    }

    /** The device address of the first byte (valid until close). */
    public long address() {
        live();
        return address;
    }

    /** Copies all of {@code host} (a native segment) to this buffer at {@code offset}; blocks until done. */
    public void copyFromHost(MemorySegment host, long offset) {
        checkRange(offset, host.byteSize());
        for (long done = 0; done < host.byteSize(); done += COPY_CHUNK_BYTES) {
            long bytes = Math.min(COPY_CHUNK_BYTES, host.byteSize() - done);
            JCudaDriver.cuMemcpyHtoD(live().withByteOffset(offset + done), hostPointer(host, done, bytes), bytes);
        }
    }

    public void copyFromHost(MemorySegment host) {
        copyFromHost(host, 0);
    }

    /** Fills {@code host} (a native segment) from this buffer at {@code offset}; blocks until done. */
    public void copyToHost(MemorySegment host, long offset) {
        checkRange(offset, host.byteSize());
        for (long done = 0; done < host.byteSize(); done += COPY_CHUNK_BYTES) {
            long bytes = Math.min(COPY_CHUNK_BYTES, host.byteSize() - done);
            JCudaDriver.cuMemcpyDtoH(hostPointer(host, done, bytes), live().withByteOffset(offset + done), bytes);
        }
    }

    public void copyToHost(MemorySegment host) {
        copyToHost(host, 0);
    }

    /** Queues a copy of {@code bytes} from pinned host memory; returns at once. */
    public void copyFromHostAsync(PinnedHostBuffer host, long hostOffset, long offset, long bytes, CudaStream stream) {
        checkRange(offset, bytes);
        host.checkRange(hostOffset, bytes);
        JCudaDriver.cuMemcpyHtoDAsync(live().withByteOffset(offset), host.pointer().withByteOffset(hostOffset), bytes,
                stream.handle());
    }

    /** Queues a copy of {@code bytes} into pinned host memory; returns at once. */
    public void copyToHostAsync(PinnedHostBuffer host, long hostOffset, long offset, long bytes, CudaStream stream) {
        checkRange(offset, bytes);
        host.checkRange(hostOffset, bytes);
        JCudaDriver.cuMemcpyDtoHAsync(host.pointer().withByteOffset(hostOffset), live().withByteOffset(offset), bytes,
                stream.handle());
    }

    /** Queues a fill of every byte with {@code value}. */
    public void fill(byte value, CudaStream stream) {
        JCudaDriver.cuMemsetD8Async(live(), value, byteSize, stream.handle());
    }

    /** Queues a fill of {@code words} 32-bit words from byte {@code offset} (4-byte aligned) with {@code value}'s bits. */
    public void fillWords(long offset, int value, long words, CudaStream stream) {
        checkRange(offset, 4 * words);
        if (offset % 4 != 0) {
            throw new IllegalArgumentException("a 32-bit fill needs a 4-byte aligned offset, got " + offset);
        }
        JCudaDriver.cuMemsetD32Async(live().withByteOffset(offset), value, words, stream.handle());
    }

    private static Pointer hostPointer(MemorySegment host, long offset, long bytes) {
        Objects.requireNonNull(host, "host");
        if (!host.isNative()) {
            throw new IllegalArgumentException("host copies need a native (off-heap) memory segment");
        }
        return Pointer.to(host.asSlice(offset, bytes).asByteBuffer());
    }

    private void checkRange(long offset, long bytes) {
        if (offset < 0 || bytes < 0 || offset + bytes > byteSize) {
            throw new IndexOutOfBoundsException("bytes [" + offset + ", " + (offset + bytes) + ") outside a device buffer of "
                    + byteSize);
        }
    }

    private CUdeviceptr live() {
        if (pointer == null) {
            throw new IllegalStateException("device buffer is closed");
        }
        return pointer;
    }

    @Override
    public void close() {
        if (pointer != null) {
            JCudaDriver.cuMemFree(pointer);
            pointer = null;
        }
    }
}
