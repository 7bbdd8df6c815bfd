package io.bitrelay.runtime.cuda;

import jcuda.driver.JCudaDriver;

/**
 * Whether the CUDA driver API can be used in this process, found out once and without side effects on
 * failure: loading JCuda's native library (which links libcuda.so.1), cuInit, and counting devices.
 *
 * @param reason         why not, when {@code deviceCount} is 0: names the missing piece
 * @param driverVersion  the driver's CUDA version as 1000·major + 10·minor (13000 for 13.0), 0 if unknown
 */
public record CudaProbe(int deviceCount, int driverVersion, String reason) {

    /** At least one GPU is usable. */
    public boolean available() {
        return deviceCount > 0;
    }

    /** The cached probe of this process; never throws. */
    public static CudaProbe get() {
        return Holder.PROBE;
    }

    /** Throws {@link CudaUnavailableException} with the probe's reason unless a GPU is usable. */
    public static void requireAvailable() {
        CudaProbe probe = get();
        if (!probe.available()) {
            throw new CudaUnavailableException(probe.reason());
        }
    }

    private static final class Holder {
        static final CudaProbe PROBE = run();
    }

    private static CudaProbe run() {
        try {
            JCudaDriver.setExceptionsEnabled(true);
        } catch (Throwable e) {
            // UnsatisfiedLinkError (no libcuda.so.1, or the natives jar is missing), ExceptionInInitializerError.
            return new CudaProbe(0, 0, "CUDA backend unavailable: JCuda's driver library did not load (is the "
                    + "NVIDIA driver, libcuda.so.1, installed?): " + rootMessage(e));
        }
        try {
            JCudaDriver.cuInit(0);
            int[] version = new int[1];
            JCudaDriver.cuDriverGetVersion(version);
            int[] count = new int[1];
            JCudaDriver.cuDeviceGetCount(count);
            if (count[0] == 0) {
                return new CudaProbe(0, version[0], "CUDA backend unavailable: the driver (CUDA "
                        + CudaDevice.versionString(version[0]) + ") sees no GPU");
            }
            return new CudaProbe(count[0], version[0], "");
        } catch (Throwable e) {
            return new CudaProbe(0, 0, "CUDA backend unavailable: cuInit failed (no GPU or driver): " + rootMessage(e));
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null) {
            root = root.getCause();
        }
        // JCuda's load errors carry whole nested stack traces in the message: the first line says enough.
        String message = String.valueOf(root.getMessage()).lines().findFirst().orElse("");
        return root.getClass().getSimpleName() + ": " + message;
    }
}
