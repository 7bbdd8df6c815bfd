// Checks the INT8 GEMV experiment (int8_gemv_experiment.cu, every variant and warp count) against exact host dot
// products and times it on OPT-175B's weight shapes, next to a device-to-device copy of the same bytes and a pure
// streaming read of W (the floor any GEMM that reads the weights once sits on).
//   nvcc -O2 -std=c++17 -gencode arch=compute_90a,code=sm_90a -o int8_gemv_test kernels/src/test/cuda/int8_gemv_test.cu
//   ./int8_gemv_test            (check, then bench; exit code 1 on any wrong element)
// An H200's run: kernels/bench/results/int8_gemv_experiment.log.
#include "int8_gemv_experiment.cu"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cuda_check.h"

template <int kTiles, int kGroups, int kUnroll>
__global__ void __launch_bounds__(256) variant(const int8_t* x, const int8_t* w, int32_t* y, int m, int n, int k) {
    int8_gemv::gemv<kTiles, kGroups, kUnroll>(x, w, y, m, n, k);
}

// Reads n int4 of W once (grid-stride, streaming loads): what a pure read of the weights costs.
__global__ void read_only(const int4* __restrict__ w, long n, int* sink) {
    int v = 0;
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        int4 a = __ldcs(w + i);
        v ^= a.x ^ a.y ^ a.z ^ a.w;
    }
    if (v == 0x12345678) *sink = v;
}

using Kernel = void (*)(const int8_t*, const int8_t*, int32_t*, int, int, int);
struct Variant { const char* name; int groups; Kernel m8; Kernel m16; };
#define VARIANT(G, U) {"g" #G "u" #U, G, variant<1, G, U>, variant<2, G, U>}
static const Variant kVariants[] = {VARIANT(1, 4), VARIANT(2, 2), VARIANT(2, 4), VARIANT(4, 1), VARIANT(4, 2),
                                    {"shipped", BR_INT8_GEMV_GROUPS, br_int8_gemv_m8, br_int8_gemv_m16}};

static void launch(const Variant& v, const int8_t* x, const int8_t* w, int32_t* y, int m, int n, int k, int warps,
                   cudaStream_t s) {
    dim3 grid((n + 16 * v.groups - 1) / (16 * v.groups));
    (m <= 8 ? v.m8 : v.m16)<<<grid, 32 * warps, 0, s>>>(x, w, y, m, n, k);
}

// Every element for small shapes, `samples` random ones otherwise, for every variant and warp count on the same
// data; returns the number of wrong elements.
static long check(int m, int n, int k, long samples) {
    uint64_t state = 0x9e3779b97f4a7c15ull ^ ((uint64_t) m << 40) ^ ((uint64_t) n << 20) ^ (uint64_t) k;
    auto next = [&state]() {  // xorshift64: fast enough for a few hundred MB of test data
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    std::vector<int8_t> hx((size_t) m * k), hw((size_t) n * k);
    for (auto& v : hx) v = (int8_t) next();
    for (auto& v : hw) v = (int8_t) next();
    int8_t *dx, *dw;
    int32_t* dy;
    CUDA_CHECK(cudaMalloc(&dx, hx.size()));
    CUDA_CHECK(cudaMalloc(&dw, hw.size()));
    CUDA_CHECK(cudaMalloc(&dy, (size_t) m * n * 4));
    CUDA_CHECK(cudaMemcpy(dx, hx.data(), hx.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dw, hw.data(), hw.size(), cudaMemcpyHostToDevice));
    long total = (long) m * n;
    long count = samples <= 0 || samples >= total ? total : samples;
    std::vector<long> picked(count);
    std::vector<long> expected(count);
    for (long s = 0; s < count; s++) {
        long idx = count == total ? s : (long) (next() % total);
        int i = (int) (idx / n), j = (int) (idx % n);
        long e = 0;
        for (int p = 0; p < k; p++) e += (long) hx[(size_t) i * k + p] * hw[(size_t) j * k + p];
        picked[s] = idx;
        expected[s] = e;
    }
    long wrong = 0;
    std::vector<int32_t> hy((size_t) m * n);
    for (const Variant& v : kVariants) {
        for (int warps : {1, 2, 4, 8}) {
            CUDA_CHECK(cudaMemset(dy, 0x7f, (size_t) m * n * 4));
            launch(v, dx, dw, dy, m, n, k, warps, 0);
            CUDA_CHECK(cudaGetLastError());
            CUDA_CHECK(cudaMemcpy(hy.data(), dy, hy.size() * 4, cudaMemcpyDeviceToHost));
            for (long s = 0; s < count; s++) {
                if (hy[picked[s]] != expected[s]) {
                    if (wrong < 5) {
                        std::printf("  %s wrong at m=%d n=%d k=%d warps=%d (%ld, %ld): %d != %ld\n", v.name, m, n, k, warps,
                                    picked[s] / n, picked[s] % n, hy[picked[s]], expected[s]);
                    }
                    wrong++;
                }
            }
        }
    }
    CUDA_CHECK(cudaFree(dx));
    CUDA_CHECK(cudaFree(dw));
    CUDA_CHECK(cudaFree(dy));
    return wrong;
}

static float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("# %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    struct Shape { int m, n, k; long samples; };
    const Shape shapes[] = {{1, 100, 64, 0}, {5, 384, 320, 0}, {8, 1000, 1024, 0}, {9, 17, 256, 0}, {16, 4104, 768, 0},
                            {13, 12288, 12288, 3000}, {3, 4096, 49152, 3000}};
    long wrong = 0;
    for (const Shape& s : shapes) {
        wrong += check(s.m, s.n, s.k, s.samples);
    }
    std::printf("check: %ld wrong element(s)\n", wrong);
    if (wrong) return 1;

    struct Gemm { const char* name; int n, k; };
    const Gemm gemms[] = {{"qkv", 36864, 12288}, {"out", 12288, 12288}, {"fc1", 49152, 12288}, {"fc2", 12288, 49152}};
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreate(&stream));
    cudaEvent_t start, end;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&end));
    int* sink;
    CUDA_CHECK(cudaMalloc(&sink, 4));
    std::printf("gemm  M variant warps |     us    GB/s | copy us  copy GB/s | read us  read GB/s | copy/gemv read/gemv\n");
    for (const Gemm& g : gemms) {
        size_t wBytes = (size_t) g.n * g.k;
        int8_t *dx, *dw, *dcopy;
        int32_t* dy;
        CUDA_CHECK(cudaMalloc(&dx, (size_t) 16 * g.k));
        CUDA_CHECK(cudaMalloc(&dw, wBytes));
        CUDA_CHECK(cudaMalloc(&dcopy, wBytes / 2));
        CUDA_CHECK(cudaMalloc(&dy, (size_t) 16 * g.n * 4));
        CUDA_CHECK(cudaMemset(dx, 1, (size_t) 16 * g.k));
        CUDA_CHECK(cudaMemset(dw, 1, wBytes));
        // A copy of half the bytes reads and writes as many bytes as the GEMM reads.
        std::vector<float> copyTimes;
        for (int r = 0; r < 20; r++) {
            CUDA_CHECK(cudaEventRecord(start, stream));
            CUDA_CHECK(cudaMemcpyAsync(dcopy, dw, wBytes / 2, cudaMemcpyDeviceToDevice, stream));
            CUDA_CHECK(cudaEventRecord(end, stream));
            CUDA_CHECK(cudaEventSynchronize(end));
            float ms;
            CUDA_CHECK(cudaEventElapsedTime(&ms, start, end));
            copyTimes.push_back(ms * 1000);
        }
        float copyUs = median(copyTimes);
        std::vector<float> readTimes;
        for (int r = 0; r < 20; r++) {
            CUDA_CHECK(cudaEventRecord(start, stream));
            read_only<<<prop.multiProcessorCount * 8, 256, 0, stream>>>(reinterpret_cast<const int4*>(dw), (long) (wBytes / 16), sink);
            CUDA_CHECK(cudaEventRecord(end, stream));
            CUDA_CHECK(cudaEventSynchronize(end));
            float ms;
            CUDA_CHECK(cudaEventElapsedTime(&ms, start, end));
            readTimes.push_back(ms * 1000);
        }
        float readUs = median(readTimes);
        for (int m : {1, 8, 16}) {
            for (const Variant& v : kVariants) {
            for (int warps : {2, 4, 8}) {
                std::vector<float> times;
                for (int r = 0; r < 25; r++) {
                    CUDA_CHECK(cudaEventRecord(start, stream));
                    launch(v, dx, dw, dy, m, g.n, g.k, warps, stream);
                    CUDA_CHECK(cudaEventRecord(end, stream));
                    CUDA_CHECK(cudaEventSynchronize(end));
                    float ms;
                    CUDA_CHECK(cudaEventElapsedTime(&ms, start, end));
                    if (r >= 5) times.push_back(ms * 1000);
                }
                float us = median(times);
                std::printf("%-4s %2d %-7s %5d | %7.1f %7.0f | %7.1f %9.0f | %7.1f %8.0f | %8.0f%% %8.0f%%\n", g.name, m,
                            v.name, warps, us, wBytes / us / 1e3, copyUs, wBytes / copyUs / 1e3, readUs,
                            wBytes / readUs / 1e3, 100.0 * copyUs / us, 100.0 * readUs / us);
            }
            }
        }
        CUDA_CHECK(cudaFree(dx));
        CUDA_CHECK(cudaFree(dw));
        CUDA_CHECK(cudaFree(dcopy));
        CUDA_CHECK(cudaFree(dy));
    }
    return 0;
}
