package io.bitrelay.runtime.wire;

import java.lang.foreign.MemorySegment;

/**
 * Turns one micro-batch of activations, {@code rows × width} FP32 values in native byte order and
 * row-major, into a codec params section and a payload, and back. A frame carries both sections
 * verbatim (see {@link LinkFrame}); their sizes depend only on the shape, so a reader can check a
 * frame's declared lengths before decoding anything.
 *
 * <p>Implementations hold no per-frame state and may be shared across threads. Codecs that need
 * calibration data (RPTQ: channel permutation, cluster plan) take it at construction; the params section
 * then carries only what varies per frame (e.g. per-cluster scales and zero points).
 *
 * <p>Segments must be native or backed by a {@code byte[]} (what the Vector API reads); all multi-byte
 * values a codec writes into params and payload are little-endian.
 */
public interface LinkCodec {

    CodecId id();

    /** Bytes of the params section for this shape; throws ArithmeticException if that overflows an int. */
    int paramsBytes(int rows, int width);

    /** Bytes of the payload for this shape. */
    long payloadBytes(int rows, int width);

    /**
     * Encodes {@code activations} (rows × width FP32, native order) into {@code params}
     * ({@link #paramsBytes} bytes) and {@code payload} ({@link #payloadBytes} bytes).
     */
    void encode(MemorySegment activations, int rows, int width, MemorySegment params, MemorySegment payload);

    /** Decodes into {@code out} (rows × width FP32, native order). */
    void decode(MemorySegment params, MemorySegment payload, int rows, int width, MemorySegment out);

    /**
     * Refuses, with a {@link FrameException}, a params section this codec could size but not decode, e.g. an
     * RPTQ frame encoded with another calibration plan. {@link LinkFrameReader} calls it once the CRC has
     * passed; codecs whose params always decode keep this default, which accepts everything.
     */
    default void checkParams(MemorySegment params, int rows, int width) {
    }
}
