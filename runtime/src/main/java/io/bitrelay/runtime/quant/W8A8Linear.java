package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.ops.cpu.Int8MatMul;
import io.bitrelay.runtime.ops.cpu.Int8Quantize;
import io.bitrelay.runtime.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * A linear layer computing in INT8 (W8A8): weights quantized once, per output channel, symmetric with
 * round-to-nearest; input activations quantized at each call, per token (dynamic) or per tensor (static
 * scale from calibration). The INT8 × INT8 product accumulates exactly in int32 ({@link Int8MatMul}) and
 * is dequantized with both scales: {@code out[i,j] = acc[i,j] · s_x[i] · s_w[j] + bias[j]}. The bias stays FP32.
 */
public final class W8A8Linear implements StoredLinear {
    public static final String KIND = "w8a8";

    private final MemorySegment weight;   // (outFeatures, inFeatures) INT8 codes in [-127, 127]
    private final float[] weightScales;   // (outFeatures) per output channel
    private final MemorySegment bias;     // (outFeatures) FP32, or null
    private final int outFeatures;
    private final int inFeatures;
    private final ActivationQuantization activations;
    private final float staticScale;      // PER_TENSOR_STATIC: calibrated absmax / 127; NaN otherwise

    /** Per-thread scratch: the quantized input and the int32 product, grown to the largest call seen. */
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static final class Scratch {
        MemorySegment codes = MemorySegment.NULL; // (rows, inFeatures) INT8
        MemorySegment acc = MemorySegment.NULL;   // (rows, outFeatures) int32
        float[] rowScales = new float[0];         // (rows)

        void ensure(long codeBytes, long accBytes, int rows) {
            // Arena.ofAuto: a thread's scratch is freed by the GC once the thread and its ThreadLocal are gone.
            if (codes.byteSize() < codeBytes) {
                codes = Arena.ofAuto().allocate(codeBytes, 64);
            }
            if (acc.byteSize() < accBytes) {
                acc = Arena.ofAuto().allocate(accBytes, 64);
            }
            if (rowScales.length < rows) {
                rowScales = new float[rows];
            }
        }
    }

    private W8A8Linear(MemorySegment weight, float[] weightScales, MemorySegment bias, int outFeatures, int inFeatures,
                       ActivationQuantization activations, float staticScale) {
        this.weight = weight;
        this.weightScales = weightScales;
        this.bias = bias;
        this.outFeatures = outFeatures;
        this.inFeatures = inFeatures;
        this.activations = activations;
        this.staticScale = staticScale;
    }

    /**
     * Quantizes {@code fp32}'s weights into {@code arena}.
     *
     * @param calibratedAbsMax for PER_TENSOR_STATIC, max |x| of this layer's input seen in calibration; ignored otherwise
     */
    public static W8A8Linear quantize(Linear fp32, ActivationQuantization activations, float calibratedAbsMax, Arena arena) {
        int out = fp32.outFeatures();
        int in = fp32.inFeatures();
        MemorySegment codes = arena.allocate((long) out * in, 64);
        float[] scales = new float[out];
        Int8Quantize.quantizeRows(fp32.weight(), out, in, codes, scales);
        float staticScale = Float.NaN;
        if (activations == ActivationQuantization.PER_TENSOR_STATIC) {
            if (!(calibratedAbsMax >= 0f) || Float.isInfinite(calibratedAbsMax)) {
                throw new IllegalArgumentException("per-tensor static quantization needs a finite calibrated absmax, got "
                        + calibratedAbsMax);
            }
            staticScale = Int8Quantize.scaleFor(calibratedAbsMax);
        }
        return new W8A8Linear(codes, scales, fp32.bias(), out, in, activations, staticScale);
    }

    /** Rebuilds a layer saved through {@link #tensors()} and {@link #settings()}; the tensors are copied into {@code arena}. */
    public static W8A8Linear restore(Map<String, String> settings, Map<String, MemorySegment> tensors, Arena arena) {
        int out = StoredLinears.intSetting(settings, "out_features");
        int in = StoredLinears.intSetting(settings, "in_features");
        ActivationQuantization activations = ActivationQuantization.valueOf(StoredLinears.setting(settings, "activations"));
        float staticScale = Float.parseFloat(StoredLinears.setting(settings, "static_scale"));
        MemorySegment codes = StoredLinears.copy(tensors, "codes", (long) out * in, arena);
        float[] scales = StoredLinears.copy(tensors, "scales", (long) out * Float.BYTES, arena)
                .toArray(ValueLayout.JAVA_FLOAT);
        MemorySegment bias = tensors.containsKey("bias")
                ? StoredLinears.copy(tensors, "bias", (long) out * Float.BYTES, arena) : null;
        return new W8A8Linear(codes, scales, bias, out, in, activations, staticScale);
    }

    @Override
    public String kind() {
        return KIND;
    }

    @Override
    public List<Tensor> tensors() {
        List<Tensor> list = new ArrayList<>();
        list.add(new Tensor("codes", DType.I8, new long[]{outFeatures, inFeatures}, weight));
        list.add(new Tensor("scales", DType.F32, new long[]{outFeatures}, MemorySegment.ofArray(weightScales)));
        if (bias != null) {
            list.add(new Tensor("bias", DType.F32, new long[]{outFeatures}, bias));
        }
        return list;
    }

    @Override
    public Map<String, String> settings() {
        return Map.of("out_features", Integer.toString(outFeatures), "in_features", Integer.toString(inFeatures),
                "activations", activations.name(), "static_scale", Float.toString(staticScale));
    }

    @Override
    public void apply(MemorySegment in, int rows, MemorySegment out) {
        if (rows <= 0) {
            return;
        }
        Scratch scratch = SCRATCH.get();
        scratch.ensure((long) rows * inFeatures, (long) rows * outFeatures * Integer.BYTES, rows);
        float[] rowScales = scratch.rowScales;
        if (activations == ActivationQuantization.PER_TOKEN_DYNAMIC) {
            Int8Quantize.quantizeRows(in, rows, inFeatures, scratch.codes, rowScales);
        } else {
            Int8Quantize.quantizeWithScale(in, rows, inFeatures, staticScale, scratch.codes);
            Arrays.fill(rowScales, 0, rows, staticScale);
        }
        Int8MatMul.matmul(scratch.codes, weight, scratch.acc, rows, outFeatures, inFeatures);
        Int8Quantize.dequantize(scratch.acc, rows, outFeatures, rowScales, weightScales, bias, out);
    }

    @Override
    public int inFeatures() {
        return inFeatures;
    }

    @Override
    public int outFeatures() {
        return outFeatures;
    }

    public ActivationQuantization activations() {
        return activations;
    }

    /** The INT8 weight codes, (outFeatures, inFeatures). */
    public MemorySegment weightCodes() {
        return weight;
    }

    /** Per-output-channel weight scales, (outFeatures). */
    public float[] weightScales() {
        return weightScales.clone();
    }

    /** The per-tensor activation scale (PER_TENSOR_STATIC), NaN for per-token dynamic. */
    public float staticScale() {
        return staticScale;
    }
}
