// Per-token symmetric INT8 quantization, optionally after a ReLU: one block per row.
// CPU reference: Int8Quantize.quantizeRows (and VectorMath.reluInPlace before it for the ReLU variants).
//
//   x      (rows, cols) FP32 or FP16
//   q      (rows, cols) INT8 out, codes in [-127, 127]
//   scales (rows) FP32 out, absmax(row) / 127 (1 for an all-zero row)
#include "common.cuh"

template <typename T, bool RELU>
__device__ void br_quantize_rows(const T* __restrict__ x, int8_t* __restrict__ q, float* __restrict__ scales,
                                 int cols) {
    __shared__ float scratch[BR_MAX_WARPS];
    const long base = (long) blockIdx.x * cols;
    float abs_max = 0.f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        float v = br_load(x, base + j);
        abs_max = fmaxf(abs_max, RELU ? fmaxf(v, 0.f) : fabsf(v));
    }
    const float scale = br_scale_for(br_block_max(abs_max, scratch));
    if (threadIdx.x == 0) {
        scales[blockIdx.x] = scale;
    }
    // The second pass re-reads the row from L1/L2: a 12288-wide FP32 row is 48 KiB.
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        float v = br_load(x, base + j);
        q[base + j] = br_quantize(RELU ? fmaxf(v, 0.f) : v, scale);
    }
}

extern "C" __global__ void br_quantize_rows_f32(const float* x, int8_t* q, float* scales, int cols) {
    br_quantize_rows<float, false>(x, q, scales, cols);
}

extern "C" __global__ void br_quantize_rows_f16(const __half* x, int8_t* q, float* scales, int cols) {
    br_quantize_rows<__half, false>(x, q, scales, cols);
}

extern "C" __global__ void br_relu_quantize_rows_f32(const float* x, int8_t* q, float* scales, int cols) {
    br_quantize_rows<float, true>(x, q, scales, cols);
}

extern "C" __global__ void br_relu_quantize_rows_f16(const __half* x, int8_t* q, float* scales, int cols) {
    br_quantize_rows<__half, true>(x, q, scales, cols);
}
