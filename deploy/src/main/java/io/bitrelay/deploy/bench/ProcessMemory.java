package io.bitrelay.deploy.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Another process's memory and identity as Linux's /proc shows them: what a server costs, seen from outside it. */
record ProcessMemory(long pid) {
    /** Resident set size now, bytes (VmRSS). */
    long rssBytes() {
        return statusKilobytes("VmRSS:") * 1024;
    }

    /** The most it was resident since it started, bytes (VmHWM). */
    long peakRssBytes() {
        return statusKilobytes("VmHWM:") * 1024;
    }

    /** When it started (clock ticks since boot, /proc/PID/stat field 22): another value means another process. */
    long startTicks() {
        String stat = read("stat");
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(fields[19]); // field 22 counted from 1, the first two (pid, comm) cut off
    }

    boolean alive() {
        return Files.isDirectory(Path.of("/proc/" + pid));
    }

    private long statusKilobytes(String field) {
        for (String line : read("status").split("\n")) {
            if (line.startsWith(field)) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException("/proc/" + pid + "/status has no " + field);
    }

    private String read(String file) {
        try {
            return Files.readString(Path.of("/proc/" + pid + "/" + file));
        } catch (IOException e) {
            throw new UncheckedIOException("process " + pid + " cannot be read (gone?): " + e.getMessage(), e);
        }
    }
}
