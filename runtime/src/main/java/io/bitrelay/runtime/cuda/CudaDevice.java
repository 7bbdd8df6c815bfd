package io.bitrelay.runtime.cuda;

import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;

import java.nio.charset.StandardCharsets;

/**
 * One GPU as the driver describes it.
 *
 * @param ordinal          CUDA device ordinal (cuda:N)
 * @param multiprocessors  SM count
 * @param totalBytes       device memory
 */
public record CudaDevice(int ordinal, String name, int computeMajor, int computeMinor, int multiprocessors,
                         long totalBytes, int driverVersion) {

    /** Reads device {@code ordinal}; throws {@link CudaUnavailableException} when there is no such GPU. */
    public static CudaDevice get(int ordinal) {
        CudaProbe probe = CudaProbe.get();
        if (!probe.available()) {
            throw new CudaUnavailableException(probe.reason());
        }
        if (ordinal < 0 || ordinal >= probe.deviceCount()) {
            throw new CudaUnavailableException("no GPU cuda:" + ordinal + " (the driver sees " + probe.deviceCount() + ")");
        }
        CUdevice device = handle(ordinal);
        byte[] name = new byte[256];
        JCudaDriver.cuDeviceGetName(name, name.length, device);
        long[] total = new long[1];
        JCudaDriver.cuDeviceTotalMem(total, device);
        return new CudaDevice(ordinal, cString(name),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
                total[0], probe.driverVersion());
    }

    /** e.g. "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB, driver CUDA 13.0)". */
    public String describe() {
        return String.format("%s (sm_%d%d, %d SMs, %.1f GiB, driver CUDA %s)", name, computeMajor, computeMinor,
                multiprocessors, totalBytes / (double) (1L << 30), versionString(driverVersion));
    }

    static CUdevice handle(int ordinal) {
        CUdevice device = new CUdevice();
        JCudaDriver.cuDeviceGet(device, ordinal);
        return device;
    }

    static String versionString(int version) {
        return version / 1000 + "." + version % 1000 / 10;
    }

    private static int attribute(CUdevice device, int attribute) {
        int[] value = new int[1];
        JCudaDriver.cuDeviceGetAttribute(value, attribute, device);
        return value[0];
    }

    private static String cString(byte[] bytes) {
        int end = 0;
        while (end < bytes.length && bytes[end] != 0) {
            end++;
        }
        return new String(bytes, 0, end, StandardCharsets.UTF_8);
    }
}
