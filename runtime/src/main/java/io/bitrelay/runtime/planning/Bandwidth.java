package io.bitrelay.runtime.planning;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Parses link rates as people write them: {@code 400kbit}, {@code 100gbit}, {@code 25GB/s}, {@code 50gbps}. */
public final class Bandwidth {
    private static final Pattern RATE = Pattern.compile("([0-9]+(?:\\.[0-9]+)?)\\s*([kmgt]?)(bit|b|bps|bytes?)(/s)?");

    private Bandwidth() {
    }

    /** @return bytes per second */
    public static double parse(String text) {
        String trimmed = text.trim();
        Matcher m = RATE.matcher(trimmed.toLowerCase(Locale.ROOT));
        if (!m.matches()) {
            throw new IllegalArgumentException("cannot read link rate '" + text
                    + "' (examples: 400kbit, 100gbit, 25GB/s, 50gbps)");
        }
        double value = Double.parseDouble(m.group(1));
        double scale = switch (m.group(2)) {
            case "k" -> 1e3;
            case "m" -> 1e6;
            case "g" -> 1e9;
            case "t" -> 1e12;
            default -> 1;
        };
        String unit = m.group(3);
        // "b" alone is ambiguous in lower case; the original spelling decides: B = bytes, b = bits.
        boolean bits = unit.equals("bit") || (unit.equals("b") && !trimmed.contains("B"));
        if (unit.equals("bps")) {
            bits = false; // GB/s spelled gbps, as NVLink/PCIe figures usually are
        }
        double bytes = value * scale / (bits ? 8 : 1);
        if (!(bytes > 0)) {
            throw new IllegalArgumentException("link rate '" + text + "' must be positive");
        }
        return bytes;
    }

    public static String format(double bytesPerSecond) {
        if (bytesPerSecond >= 1e9) {
            return String.format(Locale.ROOT, "%.1f GB/s", bytesPerSecond / 1e9);
        }
        if (bytesPerSecond >= 1e6) {
            return String.format(Locale.ROOT, "%.1f MB/s", bytesPerSecond / 1e6);
        }
        return String.format(Locale.ROOT, "%.1f kB/s", bytesPerSecond / 1e3);
    }
}
