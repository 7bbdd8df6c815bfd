package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.model.opt.LayerNormWeights;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/** Host-side helpers both layer recipes use to assemble what they upload. */
final class LayerUploads {
    private LayerUploads() {
    }

    /** Gain and bias of both LayerNorms, FP32: ln1 gain, ln1 bias, ln2 gain, ln2 bias. */
    static DeviceBuffer[] layerNorms(DeviceTensors tensors, LayerNormWeights ln1, LayerNormWeights ln2) {
        if (ln1 == null || ln2 == null) {
            throw new IllegalArgumentException("the GPU stage needs both LayerNorms of a pre-LayerNorm layer");
        }
        return new DeviceBuffer[] {tensors.floats(ln1.gain(), ln1.width()), tensors.floats(ln1.bias(), ln1.width()),
                tensors.floats(ln2.gain(), ln2.width()), tensors.floats(ln2.bias(), ln2.width())};
    }

    /** LayerNorms that normalise only (gain 1, bias 0), for layers with random weights. */
    static DeviceBuffer[] unitLayerNorms(DeviceTensors tensors, int width) {
        return new DeviceBuffer[] {tensors.floats(constant(width, 1f)), tensors.floats(constant(width, 0f)),
                tensors.floats(constant(width, 1f)), tensors.floats(constant(width, 0f))};
    }

    /** {@code count} FP32 values of {@code fp32}, each times {@code factor}. */
    static float[] bias(MemorySegment fp32, int count, float factor) {
        float[] values = fp32.asSlice(0, (long) count * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT);
        for (int i = 0; i < count; i++) {
            values[i] *= factor;
        }
        return values;
    }

    static float[] scaled(float[] values, float factor) {
        float[] out = values.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] *= factor;
        }
        return out;
    }

    static float[] concat(float[]... parts) {
        int length = Arrays.stream(parts).mapToInt(p -> p.length).sum();
        float[] out = new float[length];
        int at = 0;
        for (float[] part : parts) {
            System.arraycopy(part, 0, out, at, part.length);
            at += part.length;
        }
        return out;
    }

    static float[] constant(int count, float value) {
        float[] values = new float[count];
        Arrays.fill(values, value);
        return values;
    }
}
