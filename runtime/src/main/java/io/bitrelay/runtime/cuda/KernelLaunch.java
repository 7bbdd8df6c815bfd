package io.bitrelay.runtime.cuda;

import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.JCudaDriver;

/**
 * cuLaunchKernel with its argument array built from Java values. Arguments are, in the kernel's order:
 * {@link Long} (a device address, or any 64-bit value), {@link Integer}, {@link Float}, or {@code null}
 * (a null pointer). Launch errors surface at once (JCuda checks the return code); errors inside the kernel
 * surface at the next synchronizing call.
 */
public final class KernelLaunch {
    private KernelLaunch() {
    }

    public static void launch(CUfunction kernel, int gridX, int gridY, int blockX, int sharedBytes, CudaStream stream,
                              Object... args) {
        launch(kernel, gridX, gridY, 1, blockX, sharedBytes, stream, args);
    }

    /** As {@link #launch(CUfunction, int, int, int, int, CudaStream, Object...)} on a three-dimensional grid. */
    public static void launch(CUfunction kernel, int gridX, int gridY, int gridZ, int blockX, int sharedBytes,
                              CudaStream stream, Object... args) {
        if (gridX <= 0 || gridY <= 0 || gridY > 65_535 || gridZ <= 0 || gridZ > 65_535 || blockX <= 0 || blockX > 1024) {
            throw new IllegalArgumentException("bad launch shape: grid (" + gridX + ", " + gridY + ", " + gridZ + "), block "
                    + blockX);
        }
        NativePointerObject[] params = new NativePointerObject[args.length];
        for (int i = 0; i < args.length; i++) {
            params[i] = switch (args[i]) {
                case null -> Pointer.to(new long[] {0L});
                case Long value -> Pointer.to(new long[] {value});
                case Integer value -> Pointer.to(new int[] {value});
                case Float value -> Pointer.to(new float[] {value});
                default -> throw new IllegalArgumentException("kernel argument " + i + " has unsupported type "
                        + args[i].getClass().getSimpleName());
            };
        }
        JCudaDriver.cuLaunchKernel(kernel, gridX, gridY, gridZ, blockX, 1, 1, sharedBytes, stream.handle(),
                Pointer.to(params), null);
    }
}
