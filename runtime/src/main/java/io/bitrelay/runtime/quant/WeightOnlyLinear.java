package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.ops.cpu.Fp32MatMul;
import io.bitrelay.runtime.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Weight-only quantization (W4A16): {@link PackedWeights} in memory, FP32 activations and arithmetic. Each
 * call dequantizes the weights into per-thread FP32 scratch and runs the FP32 GEMM; only the stored weights
 * shrink (4 bits: about 1/8 of FP32), the arithmetic is that of an FP32 layer with rounded weights.
 */
public final class WeightOnlyLinear implements StoredLinear {
    public static final String KIND = "weight-only";

    private final PackedWeights weights;
    private final MemorySegment bias; // (outFeatures) FP32, or null

    /** Per-thread FP32 copy of the weights, (outFeatures, inFeatures), grown to the largest layer seen. */
    private static final ThreadLocal<MemorySegment[]> SCRATCH = ThreadLocal.withInitial(() -> new MemorySegment[] {
            MemorySegment.NULL});

    private WeightOnlyLinear(PackedWeights weights, MemorySegment bias) {
        this.weights = weights;
        this.bias = bias;
    }

    /** @param groupSize input columns per weight scale; 0 = per output channel */
    public static WeightOnlyLinear quantize(Linear fp32, int bits, int groupSize, Arena arena) {
        return new WeightOnlyLinear(PackedWeights.quantize(fp32, bits, groupSize, arena), fp32.bias());
    }

    /** {@code weights} already rounded (by {@link Gptq}) from a layer whose bias is {@code bias}. */
    public static WeightOnlyLinear of(PackedWeights weights, MemorySegment bias) {
        return new WeightOnlyLinear(weights, bias);
    }

    public static WeightOnlyLinear restore(Map<String, String> settings, Map<String, MemorySegment> tensors, Arena arena) {
        PackedWeights weights = PackedWeights.restore(settings, tensors, arena);
        MemorySegment bias = tensors.containsKey("bias")
                ? StoredLinears.copy(tensors, "bias", (long) weights.outFeatures() * Float.BYTES, arena) : null;
        return new WeightOnlyLinear(weights, bias);
    }

    @Override
    public void apply(MemorySegment in, int rows, MemorySegment out) {
        if (rows <= 0) {
            return;
        }
        MemorySegment[] holder = SCRATCH.get();
        long bytes = (long) weights.outFeatures() * weights.inFeatures() * Float.BYTES;
        if (holder[0].byteSize() < bytes) {
            holder[0] = Arena.ofAuto().allocate(bytes, 64); // freed by the GC with the thread's ThreadLocal
        }
        weights.dequantize(holder[0]);
        Fp32MatMul.matmul(in, holder[0], bias, out, rows, weights.outFeatures(), weights.inFeatures());
    }

    @Override
    public String kind() {
        return KIND;
    }

    @Override
    public List<Tensor> tensors() {
        List<Tensor> list = new ArrayList<>();
        weights.tensors(list);
        if (bias != null) {
            list.add(new Tensor("bias", DType.F32, new long[]{weights.outFeatures()}, bias));
        }
        return list;
    }

    @Override
    public Map<String, String> settings() {
        Map<String, String> settings = new HashMap<>();
        weights.settings(settings);
        return Map.copyOf(settings);
    }

    @Override
    public int inFeatures() {
        return weights.inFeatures();
    }

    @Override
    public int outFeatures() {
        return weights.outFeatures();
    }

    public PackedWeights weights() {
        return weights;
    }
}
