package io.bitrelay.runtime.wire;

import io.bitrelay.runtime.wire.FrameException.Reason;

import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;

/**
 * Counters for one link (one direction of one stage boundary). Wire bytes are whole frames (header,
 * layout, params, payload, CRC); FP16-equivalent wire bytes are what the same frames would have cost
 * through the FP16 codec, so {@link Snapshot#bandwidthRatio()} is the saving the codec bought, headers
 * included. Thread-safe; one lock keeps a snapshot's counters consistent with each other, and it is
 * uncontended when one agent owns the link.
 */
public final class LinkStats {
    private static final Fp16Codec FP16 = new Fp16Codec();

    private long frames;
    private long tokens;
    private long payloadBytes;
    private long wireBytes;
    private long fp16WireBytes;
    private final long[] rejectedByReason = new long[Reason.values().length];

    /** Counts one frame sent or accepted. */
    public void recordFrame(int rows, int width, int layoutBytes, long payloadBytes, long wireBytes) {
        recordFrame(rows, width, layoutBytes, payloadBytes, wireBytes, 0);
    }

    /** @param sealBytes the frame's seal (tag and nonce), which an FP16 frame on the same link carries too */
    public synchronized void recordFrame(int rows, int width, int layoutBytes, long payloadBytes, long wireBytes, int sealBytes) {
        frames++;
        tokens += rows;
        this.payloadBytes += payloadBytes;
        this.wireBytes += wireBytes;
        fp16WireBytes += LinkFrame.frameBytes(FP16, layoutBytes, rows, width) + sealBytes;
    }

    public void recordFrame(LinkFrameWriter written) {
        recordFrame(written.rows(), written.width(), written.layoutLength(), written.payloadLength(),
                written.frameLength(), written.sealBytes());
    }

    public void recordFrame(LinkFrameReader accepted) {
        recordFrame(accepted.rows(), accepted.width(), accepted.layoutLength(), accepted.payloadLength(),
                accepted.frameLength(), accepted.sealBytes());
    }

    public synchronized void recordRejected(Reason reason) {
        rejectedByReason[reason.ordinal()]++;
    }

    public synchronized Snapshot snapshot() {
        Map<Reason, Long> rejected = new EnumMap<>(Reason.class);
        for (Reason reason : Reason.values()) {
            rejected.put(reason, rejectedByReason[reason.ordinal()]);
        }
        return new Snapshot(frames, tokens, payloadBytes, wireBytes, fp16WireBytes,
                Collections.unmodifiableMap(rejected));
    }

    /** Counters at one instant; {@code rejected} has every reason, zero included. */
    public record Snapshot(long frames, long tokens, long payloadBytes, long wireBytes, long fp16WireBytes,
                           Map<Reason, Long> rejected) {

        /** FP16-equivalent wire bytes over actual wire bytes; 1 for FP16 itself, NaN before any frame. */
        public double bandwidthRatio() {
            return wireBytes == 0 ? Double.NaN : (double) fp16WireBytes / wireBytes;
        }

        public double wireBytesPerToken() {
            return tokens == 0 ? Double.NaN : (double) wireBytes / tokens;
        }

        public long rejectedTotal() {
            long total = 0;
            for (long count : rejected.values()) {
                total += count;
            }
            return total;
        }
    }
}
