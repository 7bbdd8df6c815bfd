package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.tensor.DType;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;

/**
 * A quantized linear layer that can be saved with its recipe and rebuilt without recalibrating or
 * requantizing: it names its tensors (written to safetensors) and its scalar settings (written to the
 * recipe JSON). {@link #kind()} tells the loader which class rebuilds it.
 */
public interface StoredLinear extends LinearLayer {

    /** One tensor of a stored layer; {@code name} is a suffix such as "codes" or "scales". */
    record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {
    }

    /** Stable tag in the recipe JSON, e.g. "w8a8". */
    String kind();

    /** Every tensor the layer needs, in a fixed order. */
    List<Tensor> tensors();

    /** Scalar settings (activation scheme, bit widths, group size, static scales), as strings. */
    Map<String, String> settings();
}
