package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.ops.cpu.Fp32MatMul;

import java.lang.foreign.MemorySegment;

/**
 * A dense layer in torch.nn.Linear layout, FP32.
 *
 * @param weight (outFeatures, inFeatures) FP32
 * @param bias   (outFeatures) FP32, or null when the layer has none
 */
public record Linear(MemorySegment weight, MemorySegment bias, int outFeatures, int inFeatures) implements LinearLayer {

    /** out(rows, outFeatures) = in(rows, inFeatures) · weightᵀ + bias */
    @Override
    public void apply(MemorySegment in, int rows, MemorySegment out) {
        Fp32MatMul.matmul(in, weight, bias, out, rows, outFeatures, inFeatures);
    }
}
