package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.cublaslt.GemmPrecision;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.tensor.DType;

/**
 * A pre-LayerNorm OPT decoder layer with FP16 weights (the baseline): FP16 activations into cuBLASLt FP16
 * GEMMs with FP32 accumulation, biases and the residual stream in FP32. q, k and v are one (3h, h) GEMM;
 * q's rows (weights and bias) are pre-scaled by 1/sqrt(headDim), as OPTAttention scales q_proj's output.
 */
final class Fp16Layer implements DeviceLayer {
    private final OptConfig config;
    private final DeviceTensors tensors;
    private final DeviceBuffer ln1Gain, ln1Bias, ln2Gain, ln2Bias; // (h) FP32
    private final DeviceBuffer qkvWeight;                          // (3h, h) FP16
    private final DeviceBuffer outWeight;                          // (h, h) FP16
    private final DeviceBuffer fc1Weight;                          // (f, h) FP16
    private final DeviceBuffer fc2Weight;                          // (h, f) FP16
    private final DeviceBuffer qkvBias, outBias, fc1Bias, fc2Bias; // FP32, or null without biases

    private Fp16Layer(OptConfig config, DeviceTensors tensors, DeviceBuffer[] ln, DeviceBuffer[] weights, DeviceBuffer[] biases) {
        this.config = config;
        this.tensors = tensors;
        this.ln1Gain = ln[0];
        this.ln1Bias = ln[1];
        this.ln2Gain = ln[2];
        this.ln2Bias = ln[3];
        this.qkvWeight = weights[0];
        this.outWeight = weights[1];
        this.fc1Weight = weights[2];
        this.fc2Weight = weights[3];
        this.qkvBias = biases[0];
        this.outBias = biases[1];
        this.fc1Bias = biases[2];
        this.fc2Bias = biases[3];
    }

    /** Uploads an FP32 layer, rounding its weights to FP16. */
    static Fp16Layer upload(OptConfig config, LayerWeights w) {
        int h = config.hiddenSize();
        int f = config.ffnDim();
        float qScale = (float) (1.0 / Math.sqrt(config.headDim()));
        DeviceTensors tensors = new DeviceTensors();
        try {
            DeviceBuffer[] ln = LayerUploads.layerNorms(tensors, w.selfAttnLayerNorm(), w.finalLayerNorm());
            DeviceBuffer qkv = tensors.allocate(3L * h * h * Short.BYTES);
            DeviceTensors.uploadHalves(qkv, 0, fp32(w.qProj()).weight(), (long) h * h, qScale);
            DeviceTensors.uploadHalves(qkv, (long) h * h, fp32(w.kProj()).weight(), (long) h * h, 1f);
            DeviceTensors.uploadHalves(qkv, 2L * h * h, fp32(w.vProj()).weight(), (long) h * h, 1f);
            DeviceBuffer[] weights = {qkv, halves(tensors, w.outProj(), (long) h * h), halves(tensors, w.fc1(), (long) f * h),
                    halves(tensors, w.fc2(), (long) h * f)};
            DeviceBuffer qkvBias = null;
            if (fp32(w.qProj()).bias() != null) {
                float[] bias = LayerUploads.concat(LayerUploads.bias(fp32(w.qProj()).bias(), h, qScale),
                        LayerUploads.bias(fp32(w.kProj()).bias(), h, 1f), LayerUploads.bias(fp32(w.vProj()).bias(), h, 1f));
                qkvBias = tensors.floats(bias);
            }
            DeviceBuffer[] biases = {qkvBias, bias(tensors, w.outProj()), bias(tensors, w.fc1()), bias(tensors, w.fc2())};
            return new Fp16Layer(config, tensors, ln, weights, biases);
        } catch (RuntimeException e) {
            tensors.close();
            throw e;
        }
    }

    /** A layer of OPT's shape with seeded random weights made on the device (benchmarks): unit LayerNorms, small biases. */
    static Fp16Layer random(OptConfig config, StageCompute compute, long seed) {
        int h = config.hiddenSize();
        int f = config.ffnDim();
        DeviceTensors tensors = new DeviceTensors();
        try {
            DeviceBuffer[] ln = LayerUploads.unitLayerNorms(tensors, h);
            long[][] shapes = {{3L * h, h}, {h, h}, {f, h}, {h, f}};
            DeviceBuffer[] weights = new DeviceBuffer[4];
            for (int i = 0; i < 4; i++) {
                long count = shapes[i][0] * shapes[i][1];
                weights[i] = tensors.allocate(count * Short.BYTES);
                // uniform in ±sqrt(3 / K): unit-variance outputs for unit-variance inputs
                compute.randomFill.fp16(weights[i].address(), count, seed * 8 + i, (float) Math.sqrt(3.0 / shapes[i][1]),
                        compute.stream);
            }
            DeviceBuffer[] biases = {tensors.floats(LayerUploads.constant(3 * h, 0.01f)), tensors.floats(LayerUploads.constant(h, 0.01f)),
                    tensors.floats(LayerUploads.constant(f, 0.01f)), tensors.floats(LayerUploads.constant(h, 0.01f))};
            compute.stream.synchronize();
            return new Fp16Layer(config, tensors, ln, weights, biases);
        } catch (RuntimeException e) {
            tensors.close();
            throw e;
        }
    }

    @Override
    public void forward(StageCompute c, StageBuffers b, AttentionStep step, int localLayer, DeviceLayer next) {
        int rows = step.rows();
        int h = config.hiddenSize();
        int f = config.ffnDim();
        float eps = OptConfig.LAYER_NORM_EPS;
        long hidden = b.hidden.address();
        long normed = b.normed.address();
        long projected = b.projected.address();
        long ffn = b.ffn.address();

        c.layerNorm.layerNorm(DType.F16, hidden, ln1Gain.address(), ln1Bias.address(), normed, rows, h, eps, c.stream);
        c.gemm(GemmPrecision.FP16, rows, 3 * h, h, normed, qkvWeight.address(), b.qkv.address());
        c.epilogues.addBias(b.qkv.address(), StageBuffers.address(qkvBias), rows, 3 * h, false, c.stream);
        StageAttention.run(c, b, config, step, localLayer);
        c.gemm(GemmPrecision.FP16, rows, h, h, b.attention.address(), outWeight.address(), projected);
        c.epilogues.addBiasResidual(projected, StageBuffers.address(outBias), hidden, rows, h, c.stream);

        c.layerNorm.layerNorm(DType.F16, hidden, ln2Gain.address(), ln2Bias.address(), normed, rows, h, eps, c.stream);
        c.gemm(GemmPrecision.FP16, rows, f, h, normed, fc1Weight.address(), ffn);
        c.epilogues.addBias(ffn, StageBuffers.address(fc1Bias), rows, f, true, c.stream);
        c.gemm(GemmPrecision.FP16, rows, h, f, ffn, fc2Weight.address(), projected);
        c.epilogues.addBiasResidual(projected, StageBuffers.address(fc2Bias), hidden, rows, h, c.stream);
    }

    @Override
    public long deviceBytes() {
        return tensors.bytes();
    }

    @Override
    public void close() {
        tensors.close();
    }

    private static DeviceBuffer halves(DeviceTensors tensors, LinearLayer linear, long count) {
        DeviceBuffer buffer = tensors.allocate(count * Short.BYTES);
        DeviceTensors.uploadHalves(buffer, 0, fp32(linear).weight(), count, 1f);
        return buffer;
    }

    private static DeviceBuffer bias(DeviceTensors tensors, LinearLayer linear) {
        Linear fp32 = fp32(linear);
        return fp32.bias() == null ? null : tensors.floats(fp32.bias(), fp32.outFeatures());
    }

    private static Linear fp32(LinearLayer linear) {
        if (!(linear instanceof Linear fp32)) {
            throw new IllegalArgumentException("the FP16 GPU stage uploads FP32 linears, got " + linear.getClass().getSimpleName());
        }
        return fp32;
    }
}
