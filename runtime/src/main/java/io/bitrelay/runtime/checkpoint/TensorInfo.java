package io.bitrelay.runtime.checkpoint;

import io.bitrelay.runtime.tensor.DType;

import java.util.Arrays;

/**
 * Where one tensor lies inside a safetensors file, as its header says.
 *
 * @param dataBegin byte offset of the first element, relative to the start of the data section
 * @param dataEnd   byte offset one past the last element, relative to the start of the data section
 */
public record TensorInfo(String name, DType dtype, long[] shape, long dataBegin, long dataEnd) {

    public long elementCount() {
        long count = 1;
        for (long dim : shape) {
            count = Math.multiplyExact(count, dim);
        }
        return count;
    }

    public long byteSize() {
        return dataEnd - dataBegin;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    public boolean hasShape(long... expected) {
        return Arrays.equals(shape, expected);
    }
}
