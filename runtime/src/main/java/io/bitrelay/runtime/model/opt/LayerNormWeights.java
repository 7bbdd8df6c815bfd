package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.ops.cpu.VectorMath;

import java.lang.foreign.MemorySegment;

/** Gain and bias of one LayerNorm, each (width) FP32. */
public record LayerNormWeights(MemorySegment gain, MemorySegment bias, int width) {

    public void apply(MemorySegment in, MemorySegment out, int rows) {
        VectorMath.layerNorm(in, out, rows, width, gain, bias, OptConfig.LAYER_NORM_EPS);
    }
}
