// Element-wise epilogues of the FP16 stage path (the W8A8 path uses dequantize.cu): cuBLASLt's FP16 GEMM
// writes y = x · Wᵀ without bias, these add the bias and either apply OPT's ReLU (fc1) or fold the result into
// the FP32 residual stream (out_proj, fc2). CPU reference: Linear.apply's bias add, VectorMath.reluInPlace,
// VectorMath.addInPlace (FP32; the GPU path rounds y to FP16 first, as torch's FP16 layers do).
//
//   y        (rows, cols) FP16, cuBLASLt's output; updated in place by br_add_bias_f16
//   bias     (cols) FP32, or null
//   residual (rows, cols) FP32, updated in place: residual += y + bias
// Grid: (ceil(cols / (2 · blockDim.x)), rows); two columns per thread (cols must be even).
#include "common.cuh"

extern "C" __global__ void br_add_bias_f16(__half* y, const float* __restrict__ bias, int cols, int relu) {
    const int j = 2 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (j >= cols) {
        return;
    }
    __half2* p = reinterpret_cast<__half2*>(y + (long) blockIdx.y * cols + j);
    float2 v = __half22float2(*p);
    if (bias != nullptr) {
        v.x += bias[j];
        v.y += bias[j + 1];
    }
    if (relu) {
        v.x = fmaxf(v.x, 0.f);
        v.y = fmaxf(v.y, 0.f);
    }
    *p = __floats2half2_rn(v.x, v.y);
}

extern "C" __global__ void br_add_bias_residual_f16(const __half* __restrict__ y, const float* __restrict__ bias,
                                                    float* residual, int cols) {
    const int j = 2 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (j >= cols) {
        return;
    }
    const long i = (long) blockIdx.y * cols + j;
    float2 v = __half22float2(*reinterpret_cast<const __half2*>(y + i));
    if (bias != nullptr) {
        v.x += bias[j];
        v.y += bias[j + 1];
    }
    float2* r = reinterpret_cast<float2*>(residual + i);
    float2 old = *r;
    *r = make_float2(old.x + v.x, old.y + v.y);
}
