package io.bitrelay.runtime.cuda.link;

import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.PinnedHostBuffer;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.wire.LinkCodec;

import java.lang.foreign.MemorySegment;

/**
 * Where a frame's sections sit in a device staging buffer, and the argument checks the GPU encoder and decoder
 * share. Params end where a 16-byte boundary begins the payload (the kernels' vector stores want it), so params
 * and payload stay back to back, as in the frame, and cross PCIe in one copy.
 */
final class LinkStaging {
    private LinkStaging() {
    }

    /** Device bytes for the sections of up to {@code maxRows} rows, from {@code base}. */
    static long stagingBytes(LinkCodec codec, int width, int maxRows) {
        return roundUp16(codec.paramsBytes(maxRows, width)) + codec.payloadBytes(maxRows, width);
    }

    /** Offset of params in a staging area (relative to its base): payload then starts 16-byte aligned. */
    static long paramsOffset(LinkCodec codec, int rows, int width) {
        int params = codec.paramsBytes(rows, width);
        return roundUp16(params) - params;
    }

    static long payloadOffset(LinkCodec codec, int rows, int width) {
        return roundUp16(codec.paramsBytes(rows, width));
    }

    static long sectionBytes(LinkCodec codec, int rows, int width) {
        return codec.paramsBytes(rows, width) + codec.payloadBytes(rows, width);
    }

    static void checkShape(String what, int rows, int width, int maxRows, int encoderWidth) {
        if (rows < 1 || rows > maxRows) {
            throw new IllegalArgumentException(what + " of " + rows + " rows: this one takes 1.." + maxRows);
        }
        if (width != encoderWidth) {
            throw new IllegalArgumentException(what + " of width " + width + ": this one is for width " + encoderWidth);
        }
    }

    static void checkRows(String what, DeviceBuffer rowsBuffer, long offset, DType type, int rows, int width) {
        if (type != DType.F32 && type != DType.F16) {
            throw new IllegalArgumentException(what + " must be F32 or F16 rows, got " + type);
        }
        long bytes = (long) rows * width * type.byteSize();
        if (offset < 0 || offset + bytes > rowsBuffer.byteSize()) {
            throw new IllegalArgumentException(what + ": " + rows + " rows × " + width + " " + type + " at offset " + offset
                    + " need " + bytes + " bytes, the device buffer has " + rowsBuffer.byteSize());
        }
    }

    /** Offset of {@code slice} inside {@code pinned}; fails unless the slice lies wholly within it. */
    static long offsetIn(PinnedHostBuffer pinned, MemorySegment slice, String what) {
        MemorySegment whole = pinned.segment();
        long offset = slice.address() - whole.address();
        if (!slice.isNative() || offset < 0 || offset + slice.byteSize() > whole.byteSize()) {
            throw new IllegalArgumentException(what + " (" + slice.byteSize() + " bytes at 0x"
                    + Long.toHexString(slice.address()) + ") is not inside the pinned buffer of " + whole.byteSize()
                    + " bytes at 0x" + Long.toHexString(whole.address()));
        }
        return offset;
    }

    static long roundUp16(long bytes) {
        return (bytes + 15) / 16 * 16;
    }
}
