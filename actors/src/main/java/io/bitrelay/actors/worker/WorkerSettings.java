package io.bitrelay.actors.worker;

import com.typesafe.config.Config;
import io.bitrelay.actors.dataplane.IdleSettings;
import io.bitrelay.runtime.cuda.CudaDevice;
import io.bitrelay.runtime.cuda.CudaSettings;
import io.bitrelay.runtime.cuda.CudaUnavailableException;

import java.lang.management.ManagementFactory;
import java.time.Duration;

/**
 * One worker's settings, from {@code bitrelay.worker} and {@code bitrelay.dataplane}.
 *
 * @param host             advertised host: links to stages on the same host use Aeron IPC
 * @param deviceLinkCodecs a GPU worker encodes and decodes its link frames on the GPU (only packed bytes cross PCIe)
 * @param deviceLmHead     a last-stage GPU worker runs the final LayerNorm and LM head on the GPU
 * @param deviceSampling   with the head on the GPU, decode steps sample there too: only token ids reach the host
 * @param stepsAhead       a GPU worker holding the whole pipeline queues step s + 1 from the tokens step s sampled on
 *                         the device, before they reach the host
 * @param streamLayers     a GPU worker uploads its layers one at a time from the checkpoint and keeps no host copy
 * @param dataPlaneIdle    how the worker's data-plane threads wait for frames ({@code bitrelay.dataplane.idle})
 * @param gptqSequences    GPTQ recipes: calibration sequences a stage keeps and rounds its layers over
 * @param cuda             {@code bitrelay.cuda}: cuBLASLt, GEMM workspace and tuning of a GPU worker's stage
 */
public record WorkerSettings(String workerId, String host, String device, long memoryBytes, int dataPort,
                             boolean allowFaultInjection, String aeronDirectory, String driverMode,
                             Duration publishTimeout, IdleSettings dataPlaneIdle, boolean deviceLinkCodecs, boolean deviceLmHead, boolean deviceSampling,
                             boolean stepsAhead, boolean streamLayers,
                             int gptqSequences, CudaSettings cuda) {

    public static WorkerSettings from(Config root, String workerId, String host) {
        Config worker = root.getConfig("bitrelay.worker");
        Config dataplane = root.getConfig("bitrelay.dataplane");
        String driver = dataplane.getString("driver");
        if (!driver.equals("embedded") && !driver.equals("external") && !driver.equals("auto")) {
            throw new IllegalArgumentException("bitrelay.dataplane.driver must be embedded, external or auto, got '" + driver + "'");
        }
        String device = worker.getString("device");
        int cudaDevice = cudaOrdinal(device);
        long memory = worker.getBytes("memory-bytes");
        // Both checked whatever the device: a bad value must stop this start, not the first start on another device.
        int perHost = positive(worker, "workers-per-host");
        int perDevice = positive(worker, "workers-per-device");
        if (memory <= 0) {
            memory = cudaDevice < 0 ? freePhysicalMemory() / perHost : gpuMemory(cudaDevice) / perDevice;
        }
        return new WorkerSettings(workerId, host, device, memory, worker.getInt("data-port"),
                worker.getBoolean("allow-fault-injection"), dataplane.getString("aeron-dir"),
                driver, dataplane.getDuration("publish-timeout"), IdleSettings.from(dataplane.getConfig("idle"),
                        cudaDevice < 0 ? IdleSettings.CPU_MAX_PARK : IdleSettings.GPU_MAX_PARK),
                worker.getBoolean("device-link-codecs"),
                worker.getBoolean("device-lm-head"), worker.getBoolean("device-sampling"), worker.getBoolean("steps-ahead"), streamLayers(worker.getString("host-weights")), gptqSequences(root),
                CudaSettings.from(root));
    }

    private static boolean streamLayers(String hostWeights) {
        return switch (hostWeights) {
            case "keep" -> false;
            case "stream" -> true;
            default -> throw new IllegalArgumentException("bitrelay.worker.host-weights must be keep or stream, got '"
                    + hostWeights + "'");
        };
    }

    private static int positive(Config worker, String key) {
        int value = worker.getInt(key);
        if (value < 1) {
            throw new IllegalArgumentException("bitrelay.worker." + key + " must be ≥ 1, got " + value);
        }
        return value;
    }

    private static int gptqSequences(Config root) {
        int sequences = root.getInt("bitrelay.quantization.gptq.sequences");
        if (sequences < 1) {
            throw new IllegalArgumentException("bitrelay.quantization.gptq.sequences must be >= 1, got " + sequences);
        }
        return sequences;
    }

    /** The CUDA ordinal of {@code device} ("cuda:N"), or -1 for "cpu". */
    public int cudaDevice() {
        return cudaOrdinal(device);
    }

    private static int cudaOrdinal(String device) {
        if (device.equals("cpu")) {
            return -1;
        }
        if (!device.matches("cuda:\\d{1,3}")) {
            throw new IllegalArgumentException("bitrelay.worker.device must be cpu or cuda:N, got '" + device + "'");
        }
        return Integer.parseInt(device.substring("cuda:".length()));
    }

    /** The GPU's memory; a worker asked for a GPU it cannot use refuses to start, saying why. */
    private static long gpuMemory(int ordinal) {
        try {
            return CudaDevice.get(ordinal).totalBytes();
        } catch (CudaUnavailableException e) {
            throw new IllegalArgumentException("bitrelay.worker.device = cuda:" + ordinal + ", but the CUDA backend is unavailable: "
                    + e.getMessage(), e);
        }
    }

    private static long freePhysicalMemory() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getFreeMemorySize();
        }
        return Runtime.getRuntime().maxMemory();
    }
}
