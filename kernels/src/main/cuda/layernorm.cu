// LayerNorm over FP32 rows (the residual stream), one block per row, as torch.nn.LayerNorm: biased variance,
// eps inside the square root. Two reductions (mean, then centred variance) like the CPU reference
// VectorMath.layerNorm, which accumulates in double: results agree to FP32 rounding, not bit for bit.
//
//   x     (rows, cols) FP32
//   gain  (cols) FP32, bias (cols) FP32
//   out   (rows, cols) FP32 or FP16, or for the fused variant:
//   q     (rows, cols) INT8 and scales (rows) FP32, per-token quantization of the normalised row
//         (LayerNorm then Int8Quantize.quantizeRows on the CPU)
#include "common.cuh"

struct BrRowStats {
    float mean;
    float inverse_std;
};

__device__ BrRowStats br_row_stats(const float* __restrict__ row, int cols, float eps, float* scratch) {
    float sum = 0.f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        sum += row[j];
    }
    const float mean = br_block_sum(sum, scratch) / cols;
    float squares = 0.f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        float centred = row[j] - mean;
        squares += centred * centred;
    }
    const float variance = br_block_sum(squares, scratch) / cols;
    return {mean, rsqrtf(variance + eps)};
}

// Written without contraction so that both passes of the fused variant compute the same value, and in the
// CPU's order: ((x - mean) · inverse_std) · gain + bias.
__device__ __forceinline__ float br_normalise(float x, BrRowStats s, float gain, float bias) {
    return __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(x, s.mean), s.inverse_std), gain), bias);
}

template <typename T>
__device__ void br_layernorm(const float* __restrict__ x, const float* __restrict__ gain,
                             const float* __restrict__ bias, T* __restrict__ out, int cols, float eps) {
    __shared__ float scratch[BR_MAX_WARPS];
    const long base = (long) blockIdx.x * cols;
    const BrRowStats stats = br_row_stats(x + base, cols, eps, scratch);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        br_store(out, base + j, br_normalise(x[base + j], stats, gain[j], bias[j]));
    }
}

extern "C" __global__ void br_layernorm_f32(const float* x, const float* gain, const float* bias, float* out,
                                            int cols, float eps) {
    br_layernorm<float>(x, gain, bias, out, cols, eps);
}

extern "C" __global__ void br_layernorm_f16(const float* x, const float* gain, const float* bias, __half* out,
                                            int cols, float eps) {
    br_layernorm<__half>(x, gain, bias, out, cols, eps);
}

extern "C" __global__ void br_layernorm_quantize(const float* __restrict__ x, const float* __restrict__ gain,
                                                 const float* __restrict__ bias, int8_t* __restrict__ q,
                                                 float* __restrict__ scales, int cols, float eps) {
    __shared__ float scratch[BR_MAX_WARPS];
    const long base = (long) blockIdx.x * cols;
    const BrRowStats stats = br_row_stats(x + base, cols, eps, scratch);
    float abs_max = 0.f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        abs_max = fmaxf(abs_max, fabsf(br_normalise(x[base + j], stats, gain[j], bias[j])));
    }
    const float scale = br_scale_for(br_block_max(abs_max, scratch));
    if (threadIdx.x == 0) {
        scales[blockIdx.x] = scale;
    }
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        q[base + j] = br_quantize(br_normalise(x[base + j], stats, gain[j], bias[j]), scale);
    }
}
