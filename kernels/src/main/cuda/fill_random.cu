// Test and benchmark data made on the device: uniform INT8 codes in [-127, 127] or FP16 in [-scale, scale],
// from a counter-based hash (splitmix64) of (seed, index), so any slice can be regenerated on the CPU.
// Never zeros: zeros hide unwritten outputs and run faster than real data.
#include "common.cuh"

__device__ __forceinline__ uint64_t br_splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

extern "C" __global__ void br_fill_random_i8(int8_t* out, long n, unsigned long long seed) {
    for (long i = (long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        out[i] = (int8_t) ((int) (br_splitmix64(seed ^ (uint64_t) i * 0xD1B54A32D192ED03ull) % 255u) - BR_QMAX);
    }
}

extern "C" __global__ void br_fill_random_f16(__half* out, long n, unsigned long long seed, float scale) {
    for (long i = (long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        // 24 random bits -> [-1, 1)
        float unit = (float) (br_splitmix64(seed ^ (uint64_t) i * 0xD1B54A32D192ED03ull) >> 40) * (2.0f / 16777216.0f) - 1.0f;
        out[i] = __float2half_rn(unit * scale);
    }
}
