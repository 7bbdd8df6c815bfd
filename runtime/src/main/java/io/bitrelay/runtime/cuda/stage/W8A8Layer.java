package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.cublaslt.GemmPrecision;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.quant.StoredLinear;
import io.bitrelay.runtime.quant.W8A8Linear;
import io.bitrelay.runtime.tensor.DType;

import java.lang.foreign.MemorySegment;

/**
 * A pre-LayerNorm OPT decoder layer in W8A8, with exactly the INT8 weight codes, per-output-channel scales and
 * FP32 biases the CPU's {@link W8A8Linear}s hold (SmoothQuant already folded into them and the LayerNorms):
 * cuBLASLt INT8→INT32 GEMMs whose outputs go straight to the next GEMM's per-token INT8 input in one fused
 * kernel each (out_proj: dequantize + bias + residual + LayerNorm + quantize; fc1: dequantize + bias + ReLU +
 * quantize; fc2: the same as out_proj with the next layer's first LayerNorm), qkv dequantized to FP16 for
 * attention, the attention output quantized per token. q, k and v are one (3h, h) GEMM (the three
 * linears quantize the same input per token, so their codes agree); q's column scales and bias carry
 * 1/sqrt(headDim).
 */
final class W8A8Layer implements DeviceLayer {
    /** A linear on the device: codes (out, in) INT8, scales (out) FP32, bias (out) FP32 or null. */
    private record Int8Linear(DeviceBuffer codes, DeviceBuffer scales, DeviceBuffer bias) {
        long biasAddress() {
            return StageBuffers.address(bias);
        }
    }

    private final OptConfig config;
    private final DeviceTensors tensors;
    private final DeviceBuffer ln1Gain, ln1Bias, ln2Gain, ln2Bias; // (h) FP32
    private final Int8Linear qkv;  // (3h, h)
    private final Int8Linear out;  // (h, h)
    private final Int8Linear fc1;  // (f, h)
    private final Int8Linear fc2;  // (h, f)

    private W8A8Layer(OptConfig config, DeviceTensors tensors, DeviceBuffer[] ln, Int8Linear qkv, Int8Linear out,
                      Int8Linear fc1, Int8Linear fc2) {
        this.config = config;
        this.tensors = tensors;
        this.ln1Gain = ln[0];
        this.ln1Bias = ln[1];
        this.ln2Gain = ln[2];
        this.ln2Bias = ln[3];
        this.qkv = qkv;
        this.out = out;
        this.fc1 = fc1;
        this.fc2 = fc2;
    }

    static W8A8Layer upload(OptConfig config, LayerWeights w) {
        int h = config.hiddenSize();
        float qScale = (float) (1.0 / Math.sqrt(config.headDim()));
        DeviceTensors tensors = new DeviceTensors();
        try {
            DeviceBuffer[] ln = LayerUploads.layerNorms(tensors, w.selfAttnLayerNorm(), w.finalLayerNorm());
            W8A8Linear q = int8(w.qProj());
            W8A8Linear k = int8(w.kProj());
            W8A8Linear v = int8(w.vProj());
            DeviceBuffer codes = tensors.allocate(3L * h * h);
            codes.copyFromHost(q.weightCodes(), 0);
            codes.copyFromHost(k.weightCodes(), (long) h * h);
            codes.copyFromHost(v.weightCodes(), 2L * h * h);
            DeviceBuffer scales = tensors.floats(LayerUploads.concat(LayerUploads.scaled(q.weightScales(), qScale),
                    k.weightScales(), v.weightScales()));
            MemorySegment qBias = bias(q);
            DeviceBuffer bias = qBias == null ? null : tensors.floats(LayerUploads.concat(LayerUploads.bias(qBias, h, qScale),
                    LayerUploads.bias(bias(k), h, 1f), LayerUploads.bias(bias(v), h, 1f)));
            Int8Linear qkv = new Int8Linear(codes, scales, bias);
            return new W8A8Layer(config, tensors, ln, qkv, upload(tensors, w.outProj()), upload(tensors, w.fc1()),
                    upload(tensors, w.fc2()));
        } catch (RuntimeException e) {
            tensors.close();
            throw e;
        }
    }

    /** A layer of OPT's shape with seeded random INT8 codes made on the device (benchmarks). */
    static W8A8Layer random(OptConfig config, StageCompute compute, long seed) {
        int h = config.hiddenSize();
        int f = config.ffnDim();
        DeviceTensors tensors = new DeviceTensors();
        try {
            DeviceBuffer[] ln = LayerUploads.unitLayerNorms(tensors, h);
            Int8Linear qkv = random(tensors, compute, 3 * h, h, seed * 8);
            Int8Linear out = random(tensors, compute, h, h, seed * 8 + 1);
            Int8Linear fc1 = random(tensors, compute, f, h, seed * 8 + 2);
            Int8Linear fc2 = random(tensors, compute, h, f, seed * 8 + 3);
            compute.stream.synchronize();
            return new W8A8Layer(config, tensors, ln, qkv, out, fc1, fc2);
        } catch (RuntimeException e) {
            tensors.close();
            throw e;
        }
    }

    /**
     * The stage's first layer quantizes LayerNorm(hidden) itself; every later one finds it in the codes and row
     * scales, left there by its predecessor's fc2 epilogue (a stage's layers share one recipe).
     */
    @Override
    public void forward(StageCompute c, StageBuffers b, AttentionStep step, int localLayer, DeviceLayer next) {
        int rows = step.rows();
        int h = config.hiddenSize();
        int f = config.ffnDim();
        float eps = OptConfig.LAYER_NORM_EPS;
        long hidden = b.hidden.address();
        long codes = b.codes.address();
        long rowScales = b.rowScales.address();
        long acc = b.accumulators.address();

        if (localLayer == 0) {
            c.w8a8.layerNormQuantize(hidden, ln1Gain.address(), ln1Bias.address(), codes, rowScales, rows, h, eps, c.stream);
        }
        c.gemm(GemmPrecision.INT8_INT32, rows, 3 * h, h, codes, qkv.codes().address(), acc);
        c.dequantize.dequantize(DType.F16, acc, rowScales, qkv.scales().address(), qkv.biasAddress(), 0, b.qkv.address(),
                rows, 3 * h, c.stream);
        StageAttention.run(c, b, config, step, localLayer);
        c.quantize.quantizeRows(DType.F16, b.attention.address(), codes, rowScales, rows, h, c.stream);
        c.gemm(GemmPrecision.INT8_INT32, rows, h, h, codes, out.codes().address(), acc);
        c.w8a8.residualLayerNormQuantize(acc, rowScales, out.scales().address(), out.biasAddress(), hidden, ln2Gain.address(),
                ln2Bias.address(), codes, rowScales, rows, h, eps, c.stream);

        c.gemm(GemmPrecision.INT8_INT32, rows, f, h, codes, fc1.codes().address(), acc);
        c.w8a8.reluQuantize(acc, rowScales, fc1.scales().address(), fc1.biasAddress(), codes, rowScales, rows, f, c.stream);
        c.gemm(GemmPrecision.INT8_INT32, rows, h, f, codes, fc2.codes().address(), acc);
        if (next instanceof W8A8Layer following) {
            c.w8a8.residualLayerNormQuantize(acc, rowScales, fc2.scales().address(), fc2.biasAddress(), hidden,
                    following.ln1Gain.address(), following.ln1Bias.address(), codes, rowScales, rows, h, eps, c.stream);
        } else {
            c.dequantize.dequantize(DType.F32, acc, rowScales, fc2.scales().address(), fc2.biasAddress(), hidden, hidden, rows,
                    h, c.stream);
        }
    }

    @Override
    public long deviceBytes() {
        return tensors.bytes();
    }

    @Override
    public void close() {
        tensors.close();
    }

    private static Int8Linear upload(DeviceTensors tensors, LinearLayer linear) {
        W8A8Linear w8 = int8(linear);
        DeviceBuffer codes = tensors.allocate((long) w8.outFeatures() * w8.inFeatures());
        codes.copyFromHost(w8.weightCodes(), 0);
        MemorySegment bias = bias(w8);
        return new Int8Linear(codes, tensors.floats(w8.weightScales()),
                bias == null ? null : tensors.floats(bias, w8.outFeatures()));
    }

    private static Int8Linear random(DeviceTensors tensors, StageCompute compute, int outFeatures, int inFeatures, long seed) {
        long count = (long) outFeatures * inFeatures;
        DeviceBuffer codes = tensors.allocate(count);
        compute.randomFill.int8(codes.address(), count, seed, compute.stream);
        // uniform codes in ±127 have a standard deviation of about 73.3: unit-variance outputs for unit-variance inputs
        float scale = (float) (1.0 / (73.3 * Math.sqrt(inFeatures)));
        return new Int8Linear(codes, tensors.floats(LayerUploads.constant(outFeatures, scale)),
                tensors.floats(LayerUploads.constant(outFeatures, 0.01f)));
    }

    private static MemorySegment bias(W8A8Linear linear) {
        for (StoredLinear.Tensor tensor : linear.tensors()) {
            if (tensor.name().equals("bias")) {
                return tensor.data();
            }
        }
        return null;
    }

    private static W8A8Linear int8(LinearLayer linear) {
        if (!(linear instanceof W8A8Linear w8)) {
            throw new IllegalArgumentException("the W8A8 GPU stage uploads W8A8 linears, got " + linear.getClass().getSimpleName());
        }
        return w8;
    }
}
