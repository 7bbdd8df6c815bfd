// Shared helpers of bitrelay's kernels: block-wide reductions and the INT8 code range.
//
// Every kernel here is `extern "C"` so the Java launchers (io.bitrelay.runtime.cuda.kernels) find it by
// its plain name in the fatbin. Arithmetic that must match the CPU reference bit for bit (quantization,
// dequantization) is written with explicit round-to-nearest intrinsics (__fmul_rn, __fadd_rn, __fdiv_rn),
// which the compiler never contracts into an FMA: the CPU side (Java) never fuses either.
#pragma once

#include <cuda_fp16.h>
#include <stdint.h>

#define BR_QMAX 127
#define BR_MAX_WARPS 32

// Sum over the block; every thread gets the result. `scratch` holds BR_MAX_WARPS floats.
__device__ __forceinline__ float br_block_sum(float v, float* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    }
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
    __syncthreads();  // scratch may still be read by a previous reduction
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    float total = 0.f;
    for (int w = 0; w < warps; w++) {
        total += scratch[w];  // fixed order: every thread computes the same value
    }
    return total;
}

// Maximum over the block; every thread gets the result. `scratch` holds BR_MAX_WARPS floats.
__device__ __forceinline__ float br_block_max(float v, float* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    }
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
    __syncthreads();
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    float result = scratch[0];
    for (int w = 1; w < warps; w++) {
        result = fmaxf(result, scratch[w]);
    }
    return result;
}

// Int8Quantize.scaleFor: absmax / 127, or 1 for an all-zero row so nothing divides by zero.
__device__ __forceinline__ float br_scale_for(float abs_max) {
    return abs_max > 0.f ? __fdiv_rn(abs_max, (float) BR_QMAX) : 1.f;
}

// Int8Quantize.quantizeRow for one value: clamp(rint(x / scale), -127, 127), round half to even.
__device__ __forceinline__ int8_t br_quantize(float x, float scale) {
    float code = rintf(__fdiv_rn(x, scale));
    return (int8_t) fminf(fmaxf(code, (float) -BR_QMAX), (float) BR_QMAX);
}

__device__ __forceinline__ float br_load(const float* p, long i) { return p[i]; }
__device__ __forceinline__ float br_load(const __half* p, long i) { return __half2float(p[i]); }
__device__ __forceinline__ void br_store(float* p, long i, float v) { p[i] = v; }
__device__ __forceinline__ void br_store(__half* p, long i, float v) { p[i] = __float2half_rn(v); }
