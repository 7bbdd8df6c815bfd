// The W8A8 GEMM epilogue: int32 accumulators back to FP32 or FP16.
// CPU reference: Int8Quantize.dequantize, then VectorMath.addInPlace for the residual.
//
//   out[i, j] = acc[i, j] · (row_scales[i] · col_scales[j]) + bias[j] (+ residual[i, j])
//
//   acc        (rows, cols) INT32, the IMMA GEMM's output
//   row_scales (rows) FP32, per-token activation scales
//   col_scales (cols) FP32, per-output-channel weight scales
//   bias       (cols) FP32, or null
//   residual   (rows, cols) same type as out, or null; may alias out (read before write, same element)
//   out        (rows, cols) FP32 or FP16
// Grid: (ceil(cols / blockDim.x), rows).
#include "common.cuh"

template <typename T>
__device__ void br_dequantize(const int32_t* __restrict__ acc, const float* __restrict__ row_scales,
                              const float* __restrict__ col_scales, const float* __restrict__ bias,
                              const T* residual, T* out, int cols) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) {
        return;
    }
    const long i = (long) blockIdx.y * cols + j;
    float v = __fmul_rn(__int2float_rn(acc[i]), __fmul_rn(row_scales[blockIdx.y], col_scales[j]));
    if (bias != nullptr) {
        v = __fadd_rn(v, bias[j]);
    }
    if (residual != nullptr) {
        v = __fadd_rn(v, br_load(residual, i));
    }
    br_store(out, i, v);
}

extern "C" __global__ void br_dequantize_f32(const int32_t* acc, const float* row_scales, const float* col_scales,
                                             const float* bias, const float* residual, float* out, int cols) {
    br_dequantize<float>(acc, row_scales, col_scales, bias, residual, out, cols);
}

extern "C" __global__ void br_dequantize_f16(const int32_t* acc, const float* row_scales, const float* col_scales,
                                             const float* bias, const __half* residual, __half* out, int cols) {
    br_dequantize<__half>(acc, row_scales, col_scales, bias, residual, out, cols);
}
