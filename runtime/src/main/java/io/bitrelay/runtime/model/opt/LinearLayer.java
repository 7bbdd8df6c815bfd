package io.bitrelay.runtime.model.opt;

import java.lang.foreign.MemorySegment;

/**
 * A dense layer {@code out = in · Wᵀ + b} whatever its storage: FP32 ({@link Linear}) or quantized
 * (io.bitrelay.runtime.quant.W8A8Linear). Inputs and outputs are FP32 rows; only the inside differs.
 */
public interface LinearLayer {

    /** out(rows, outFeatures) = in(rows, inFeatures) · weightᵀ + bias */
    void apply(MemorySegment in, int rows, MemorySegment out);

    int inFeatures();

    int outFeatures();
}
