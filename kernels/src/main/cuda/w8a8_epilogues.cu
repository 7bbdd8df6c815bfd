// Fused W8A8 epilogues: the INT32 GEMM output goes straight to the next GEMM's INT8 input, one block per row,
// without an FP32 round trip through memory or a second launch. Each kernel does exactly the arithmetic of the
// unfused chain, in its order and with the same round-to-nearest intrinsics, so the CPU twins are that chain:
//
//   br_dequantize_residual_layernorm_quantize  (out_proj → LN2 → fc1; fc2 → the next layer's LN1 → qkv)
//       hidden[i,:] += acc[i,:] · (row_scales[i] · col_scales) + bias     Int8Quantize.dequantize + addInPlace
//       q[i,:], q_scales[i] = quantize(LayerNorm(hidden[i,:]))            VectorMath.layerNorm + quantizeRows
//   br_layernorm_quantize_v4  the second line alone (the stage's first layer)
//   br_dequantize_relu_quantize                 (fc1 → fc2)
//       q[i,:], q_scales[i] = quantize(max(acc[i,:] · (row_scales[i] · col_scales) + bias, 0))
//                                               Int8Quantize.dequantize + reluInPlace + quantizeRows
//
//   acc (rows, cols) INT32; row_scales (rows) FP32 (the GEMM input's token scales; may alias q_scales: every
//   thread reads its row's scale before the block's first barrier, the new scale is written after the last);
//   col_scales, bias (cols) FP32 (bias may be null); hidden (rows, cols) FP32 residual stream, updated in place;
//   gain, ln_bias (cols) FP32; q (rows, cols) INT8 out; q_scales (rows) FP32 out.
// Grid (rows), block up to 1024 threads; cols a multiple of 4 and every row 16-byte aligned (4-wide loads).
// The LayerNorm sums run in a different order from br_layernorm_quantize (4 columns per thread): equal to FP32
// rounding, codes within ±1, as that kernel is to the CPU.
#include "common.cuh"

namespace w8a8 {

__device__ __forceinline__ float dequantize(int32_t a, float row_scale, float col_scale) {
    return __fmul_rn(__int2float_rn(a), __fmul_rn(row_scale, col_scale));
}

// Dequantized values of 4 columns starting at 4·g, + bias.
__device__ __forceinline__ float4 dequantize4(const int32_t* __restrict__ acc_row, const float* __restrict__ col_scales,
                                              const float* __restrict__ bias, float row_scale, int g) {
    const int4 a = reinterpret_cast<const int4*>(acc_row)[g];
    const float4 c = reinterpret_cast<const float4*>(col_scales)[g];
    float4 v = make_float4(dequantize(a.x, row_scale, c.x), dequantize(a.y, row_scale, c.y),
                           dequantize(a.z, row_scale, c.z), dequantize(a.w, row_scale, c.w));
    if (bias != nullptr) {
        const float4 b = reinterpret_cast<const float4*>(bias)[g];
        v = make_float4(__fadd_rn(v.x, b.x), __fadd_rn(v.y, b.y), __fadd_rn(v.z, b.z), __fadd_rn(v.w, b.w));
    }
    return v;
}

__device__ __forceinline__ float normalise(float x, float mean, float inverse_std, float gain, float bias) {
    return __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(x, mean), inverse_std), gain), bias);
}

__device__ __forceinline__ float4 normalise4(float4 x, float mean, float inverse_std, float4 g, float4 b) {
    return make_float4(normalise(x.x, mean, inverse_std, g.x, b.x), normalise(x.y, mean, inverse_std, g.y, b.y),
                       normalise(x.z, mean, inverse_std, g.z, b.z), normalise(x.w, mean, inverse_std, g.w, b.w));
}

__device__ __forceinline__ float abs_max4(float4 v) {
    return fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
}

__device__ __forceinline__ char4 quantize4(float4 v, float scale) {
    return make_char4(br_quantize(v.x, scale), br_quantize(v.y, scale), br_quantize(v.z, scale), br_quantize(v.w, scale));
}

// LayerNorm of the FP32 row x (already final in memory) quantized per token; the row stays in L1/L2 between passes.
// x without __restrict__: the fused kernel wrote it in this launch, so its reads must not take the read-only path.
__device__ void layernorm_quantize_row(const float* x, const float* __restrict__ gain,
                                       const float* __restrict__ ln_bias, int8_t* __restrict__ q, float* q_scale,
                                       int cols, float eps, float sum, float* scratch) {
    const int groups = cols / 4;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    const float4* g4 = reinterpret_cast<const float4*>(gain);
    const float4* b4 = reinterpret_cast<const float4*>(ln_bias);
    const float mean = br_block_sum(sum, scratch) / cols;
    float squares = 0.f;
    for (int g = threadIdx.x; g < groups; g += blockDim.x) {
        const float4 v = x4[g];
        const float a = v.x - mean, b = v.y - mean, c = v.z - mean, d = v.w - mean;
        squares += a * a + b * b + c * c + d * d;
    }
    const float inverse_std = rsqrtf(br_block_sum(squares, scratch) / cols + eps);
    float abs_max = 0.f;
    for (int g = threadIdx.x; g < groups; g += blockDim.x) {
        abs_max = fmaxf(abs_max, abs_max4(normalise4(x4[g], mean, inverse_std, g4[g], b4[g])));
    }
    const float scale = br_scale_for(br_block_max(abs_max, scratch));
    if (threadIdx.x == 0) {
        *q_scale = scale;
    }
    char4* q4 = reinterpret_cast<char4*>(q);
    for (int g = threadIdx.x; g < groups; g += blockDim.x) {
        q4[g] = quantize4(normalise4(x4[g], mean, inverse_std, g4[g], b4[g]), scale);
    }
}

} // namespace w8a8

extern "C" __global__ void __launch_bounds__(1024) br_dequantize_residual_layernorm_quantize(
        const int32_t* __restrict__ acc, const float* row_scales, const float* __restrict__ col_scales,
        const float* __restrict__ bias, float* __restrict__ hidden, const float* __restrict__ gain,
        const float* __restrict__ ln_bias, int8_t* __restrict__ q, float* q_scales, int cols, float eps) {
    __shared__ float scratch[BR_MAX_WARPS];
    const long base = (long) blockIdx.x * cols;
    const float row_scale = row_scales[blockIdx.x];
    float4* h4 = reinterpret_cast<float4*>(hidden + base);
    float sum = 0.f;
    for (int g = threadIdx.x; g < cols / 4; g += blockDim.x) {
        const float4 d = w8a8::dequantize4(acc + base, col_scales, bias, row_scale, g);
        const float4 r = h4[g];
        const float4 v = make_float4(__fadd_rn(d.x, r.x), __fadd_rn(d.y, r.y), __fadd_rn(d.z, r.z), __fadd_rn(d.w, r.w));
        h4[g] = v;
        sum += (v.x + v.y) + (v.z + v.w);
    }
    // each thread re-reads only the groups it wrote, so no barrier is needed before the LayerNorm passes
    w8a8::layernorm_quantize_row(hidden + base, gain, ln_bias, q + base, q_scales + blockIdx.x, cols, eps, sum, scratch);
}

extern "C" __global__ void __launch_bounds__(1024) br_layernorm_quantize_v4(
        const float* __restrict__ x, const float* __restrict__ gain, const float* __restrict__ ln_bias,
        int8_t* __restrict__ q, float* q_scales, int cols, float eps) {
    __shared__ float scratch[BR_MAX_WARPS];
    const long base = (long) blockIdx.x * cols;
    const float4* x4 = reinterpret_cast<const float4*>(x + base);
    float sum = 0.f;
    for (int g = threadIdx.x; g < cols / 4; g += blockDim.x) {
        const float4 v = x4[g];
        sum += (v.x + v.y) + (v.z + v.w);
    }
    w8a8::layernorm_quantize_row(x + base, gain, ln_bias, q + base, q_scales + blockIdx.x, cols, eps, sum, scratch);
}

extern "C" __global__ void __launch_bounds__(1024) br_dequantize_relu_quantize(
        const int32_t* __restrict__ acc, const float* row_scales, const float* __restrict__ col_scales,
        const float* __restrict__ bias, int8_t* __restrict__ q, float* q_scales, int cols) {
    __shared__ float scratch[BR_MAX_WARPS];
    const long base = (long) blockIdx.x * cols;
    const float row_scale = row_scales[blockIdx.x];
    float abs_max = 0.f;  // of max(v, 0): the ReLU'd row is non-negative
    for (int g = threadIdx.x; g < cols / 4; g += blockDim.x) {
        const float4 v = w8a8::dequantize4(acc + base, col_scales, bias, row_scale, g);
        abs_max = fmaxf(abs_max, fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w)));
    }
    const float scale = br_scale_for(br_block_max(abs_max, scratch));
    if (threadIdx.x == 0) {
        q_scales[blockIdx.x] = scale;
    }
    char4* q4 = reinterpret_cast<char4*>(q + base);
    for (int g = threadIdx.x; g < cols / 4; g += blockDim.x) {
        const float4 v = w8a8::dequantize4(acc + base, col_scales, bias, row_scale, g);
        q4[g] = w8a8::quantize4(make_float4(fmaxf(v.x, 0.f), fmaxf(v.y, 0.f), fmaxf(v.z, 0.f), fmaxf(v.w, 0.f)), scale);
    }
}
