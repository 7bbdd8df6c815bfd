package io.bitrelay.runtime.cuda;

import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.JCudaDriver;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One kernel and a reusable argument block for cuLaunchKernel: set the arguments by position (a device
 * address or other 64-bit value, an int, a float), then launch. The argument values live in one direct buffer
 * of 8-byte slots and the parameter array pointing at them is built once, so a launch allocates nothing on the
 * Java heap (the decode path issues hundreds of launches per step). cuLaunchKernel copies the values at the
 * call, so the slots may be rewritten for the next launch at once, also while a stream is being captured.
 *
 * <p>Not thread-safe: one thread sets and launches (a stage's launchers belong to its one driving thread).
 * Launch errors surface at once (JCuda checks the return code); errors inside the kernel surface at the next
 * synchronizing call.
 */
public final class KernelLaunch {
    private static final int SLOT_BYTES = Long.BYTES;

    private final CUfunction kernel;
    private final String name;
    private final ByteBuffer values;       // (arguments) 8-byte slots, native order: an int or float sits in the low 4 bytes
    private final Pointer parameters;      // void*[arguments], each at its slot

    public KernelLaunch(CUfunction kernel, String name, int arguments) {
        if (arguments <= 0) {
            throw new IllegalArgumentException("kernel " + name + " needs at least one argument, got " + arguments);
        }
        this.kernel = kernel;
        this.name = name;
        this.values = ByteBuffer.allocateDirect(arguments * SLOT_BYTES).order(ByteOrder.nativeOrder());
        NativePointerObject[] slots = new NativePointerObject[arguments];
        for (int i = 0; i < arguments; i++) {
            slots[i] = Pointer.to(values.slice(i * SLOT_BYTES, SLOT_BYTES).order(ByteOrder.nativeOrder()));
        }
        this.parameters = Pointer.to(slots);
    }

    /** Argument {@code index} as a 64-bit value (a device address; 0 is a null pointer). */
    public KernelLaunch address(int index, long value) {
        values.putLong(slot(index), value);
        return this;
    }

    public KernelLaunch integer(int index, int value) {
        values.putLong(slot(index), 0L);
        values.putInt(slot(index), value);
        return this;
    }

    public KernelLaunch real(int index, float value) {
        values.putLong(slot(index), 0L);
        values.putFloat(slot(index), value);
        return this;
    }

    public void launch(int gridX, int gridY, int blockX, int sharedBytes, CudaStream stream) {
        launch(gridX, gridY, 1, blockX, sharedBytes, stream);
    }

    /** Queues the kernel with the arguments set so far on a three-dimensional grid of one-dimensional blocks. */
    public void launch(int gridX, int gridY, int gridZ, int blockX, int sharedBytes, CudaStream stream) {
        if (gridX <= 0 || gridY <= 0 || gridY > 65_535 || gridZ <= 0 || gridZ > 65_535 || blockX <= 0 || blockX > 1024) {
            throw new IllegalArgumentException("bad launch shape for " + name + ": grid (" + gridX + ", " + gridY + ", " + gridZ
                    + "), block " + blockX);
        }
        JCudaDriver.cuLaunchKernel(kernel, gridX, gridY, gridZ, blockX, 1, 1, sharedBytes, stream.handle(), parameters, null);
    }

    private int slot(int index) {
        if (index < 0 || index * SLOT_BYTES >= values.capacity()) {
            throw new IndexOutOfBoundsException("kernel " + name + " has " + values.capacity() / SLOT_BYTES
                    + " arguments, no argument " + index);
        }
        return index * SLOT_BYTES;
    }
}
