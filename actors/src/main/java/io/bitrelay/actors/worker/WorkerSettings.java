package io.bitrelay.actors.worker;

import com.typesafe.config.Config;

import java.lang.management.ManagementFactory;
import java.time.Duration;

/**
 * One worker's settings, from {@code bitrelay.worker} and {@code bitrelay.dataplane}.
 *
 * @param host advertised host: links to stages on the same host use Aeron IPC
 */
public record WorkerSettings(String workerId, String host, String device, long memoryBytes, int dataPort,
                             boolean allowFaultInjection, String aeronDirectory, String driverMode,
                             Duration publishTimeout) {

    public static WorkerSettings from(Config root, String workerId, String host) {
        Config worker = root.getConfig("bitrelay.worker");
        Config dataplane = root.getConfig("bitrelay.dataplane");
        long memory = worker.getBytes("memory-bytes");
        if (memory <= 0) {
            memory = freePhysicalMemory() / Math.max(1, worker.getInt("workers-per-host"));
        }
        String driver = dataplane.getString("driver");
        if (!driver.equals("embedded") && !driver.equals("external") && !driver.equals("auto")) {
            throw new IllegalArgumentException("bitrelay.dataplane.driver must be embedded, external or auto, got '" + driver + "'");
        }
        String device = worker.getString("device");
        if (!device.equals("cpu") && !device.matches("cuda:\\d+")) {
            throw new IllegalArgumentException("bitrelay.worker.device must be cpu or cuda:N, got '" + device + "'");
        }
        if (!device.equals("cpu")) {
            throw new IllegalArgumentException("bitrelay.worker.device = " + device
                    + ": this build has only the CPU backend (the CUDA backend is a later milestone); use cpu");
        }
        return new WorkerSettings(workerId, host, device, memory, worker.getInt("data-port"),
                worker.getBoolean("allow-fault-injection"), dataplane.getString("aeron-dir"),
                driver, dataplane.getDuration("publish-timeout"));
    }

    private static long freePhysicalMemory() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getFreeMemorySize();
        }
        return Runtime.getRuntime().maxMemory();
    }
}
