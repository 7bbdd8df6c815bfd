// Decode attention over an FP16 and an INT8 KV cache at OPT-175B's head shape (96 heads × 128), the shipped kernels
// (attention.cu) side by side on the same keys and values: the INT8 caches are quantized from the FP16 cache by the
// shipped kv_cache_append_int8. Check: every INT8 output within the quantization error of the FP16 output; then µs
// per decode step and GB/s of cache read.
//   nvcc -O2 -std=c++17 -gencode arch=compute_90a,code=sm_90a -o attention_int8_test kernels/src/test/cuda/attention_int8_test.cu
//   ./attention_int8_test            (exit code 1 when a check fails)
#include "../../main/cuda/attention.cu"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cuda_check.h"

// Hash-based values in [-scale, scale): the same on every run, no host copy of gigabytes.
__global__ void fillHalf(__half* p, size_t n, uint32_t seed, float scale) {
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t) i * 2654435761u ^ seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        p[i] = __float2half_rn(scale * ((h & 0xffffff) / 8388608.f - 1.f));
    }
}

constexpr int kHeads = 96;
constexpr int kD = 128;
constexpr int kHidden = kHeads * kD;

using DecodeKernel = void (*)(const AttentionSeq*, const __half*, int, int, int, float*, float*, __half*, int);

struct Problem {
    int batch, context, capacity, keysPerSplit, maxSplits;
    __half *k16, *v16, *q, *out;
    uint8_t *k8, *v8;
    AttentionSeq *seqs16, *seqs8;
    float *partialO, *partialMl;
};

static size_t int8Block(int capacity) { return (size_t) capacity * kHidden + (size_t) capacity * kHeads * 8; }

static Problem make(int batch, int context, int sms) {
    Problem p{};
    p.batch = batch;
    p.context = context;
    p.capacity = context;
    int splits = std::max(1, std::min((4 * sms + batch * kHeads - 1) / (batch * kHeads), (context + 127) / 128));
    p.keysPerSplit = ((context + splits - 1) / splits + 63) / 64 * 64;
    p.maxSplits = (context + p.keysPerSplit - 1) / p.keysPerSplit;
    size_t halves = (size_t) batch * p.capacity * kHidden;
    CUDA_CHECK(cudaMalloc(&p.k16, halves * 2));
    CUDA_CHECK(cudaMalloc(&p.v16, halves * 2));
    CUDA_CHECK(cudaMalloc(&p.k8, batch * int8Block(p.capacity)));
    CUDA_CHECK(cudaMalloc(&p.v8, batch * int8Block(p.capacity)));
    CUDA_CHECK(cudaMalloc(&p.q, (size_t) batch * kHidden * 2));
    CUDA_CHECK(cudaMalloc(&p.out, (size_t) batch * kHidden * 2));
    CUDA_CHECK(cudaMalloc(&p.partialO, (size_t) batch * kHeads * p.maxSplits * kD * 4));
    CUDA_CHECK(cudaMalloc(&p.partialMl, (size_t) batch * kHeads * p.maxSplits * 2 * 4));
    fillHalf<<<1024, 256>>>(p.k16, halves, 1, 2.f);
    fillHalf<<<1024, 256>>>(p.v16, halves, 2, 2.f);
    fillHalf<<<64, 256>>>(p.q, (size_t) batch * kHidden, 3, 0.2f);
    std::vector<AttentionSeq> fill(batch), s16(batch), s8(batch);
    for (int s = 0; s < batch; s++) {
        __half* k8 = reinterpret_cast<__half*>(p.k8 + s * int8Block(p.capacity));
        __half* v8 = reinterpret_cast<__half*>(p.v8 + s * int8Block(p.capacity));
        fill[s] = {k8, v8, s * p.capacity, context, 0, p.capacity};
        s16[s] = {p.k16 + (size_t) s * p.capacity * kHidden, p.v16 + (size_t) s * p.capacity * kHidden, s, 1, context - 1,
                  p.capacity};
        s8[s] = {k8, v8, s, 1, context - 1, p.capacity};
    }
    AttentionSeq* dFill;
    CUDA_CHECK(cudaMalloc(&dFill, batch * sizeof(AttentionSeq)));
    CUDA_CHECK(cudaMalloc(&p.seqs16, batch * sizeof(AttentionSeq)));
    CUDA_CHECK(cudaMalloc(&p.seqs8, batch * sizeof(AttentionSeq)));
    CUDA_CHECK(cudaMemcpy(dFill, fill.data(), batch * sizeof(AttentionSeq), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(p.seqs16, s16.data(), batch * sizeof(AttentionSeq), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(p.seqs8, s8.data(), batch * sizeof(AttentionSeq), cudaMemcpyHostToDevice));
    // The FP16 cache as the "new rows" of one prefill per sequence: the INT8 caches hold the same values, quantized.
    kv_cache_append_int8<<<batch * p.capacity, 128>>>(dFill, batch, p.k16, p.v16, kHidden, kHidden, kHidden, kD);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaFree(dFill));
    return p;
}

static void release(Problem& p) {
    for (void* ptr : {(void*) p.k16, (void*) p.v16, (void*) p.k8, (void*) p.v8, (void*) p.q, (void*) p.out,
                      (void*) p.partialO, (void*) p.partialMl, (void*) p.seqs16, (void*) p.seqs8}) {
        CUDA_CHECK(cudaFree(ptr));
    }
}

static void decode(const Problem& p, DecodeKernel kernel, bool int8, cudaStream_t stream) {
    const AttentionSeq* seqs = int8 ? p.seqs8 : p.seqs16;
    kernel<<<dim3(p.maxSplits, kHeads, p.batch), attention::kDecodeThreads, (size_t) p.keysPerSplit * 4, stream>>>(
            seqs, p.q, kHidden, kHidden, p.keysPerSplit, p.partialO, p.partialMl, p.out, kHidden);
    if (p.maxSplits > 1) {
        attention_decode_combine<<<dim3(kHeads, p.batch), kD, 0, stream>>>(seqs, p.keysPerSplit, p.maxSplits, p.partialO,
                                                                         p.partialMl, p.out, kHidden);
    }
}

static std::vector<float> output(const Problem& p) {
    std::vector<__half> h((size_t) p.batch * kHidden);
    CUDA_CHECK(cudaMemcpy(h.data(), p.out, h.size() * 2, cudaMemcpyDeviceToHost));
    std::vector<float> f(h.size());
    for (size_t i = 0; i < h.size(); i++) f[i] = __half2float(h[i]);
    return f;
}

static double maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); i++) m = std::max(m, (double) std::fabs(a[i] - b[i]));
    return std::isnan(m) ? INFINITY : m;
}

static float timeDecode(const Problem& p, DecodeKernel kernel, bool int8, cudaStream_t stream) {
    cudaEvent_t start, end;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&end));
    std::vector<float> times;
    for (int r = 0; r < 25; r++) {
        CUDA_CHECK(cudaEventRecord(start, stream));
        decode(p, kernel, int8, stream);
        CUDA_CHECK(cudaEventRecord(end, stream));
        CUDA_CHECK(cudaEventSynchronize(end));
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, start, end));
        if (r >= 5) times.push_back(ms * 1000);
    }
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(end));
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("# %s, %d SMs; decode over %d heads x %d, q scaled by 0.2\n", prop.name, prop.multiProcessorCount, kHeads, kD);
    std::printf("batch context | fp16 us  GB/s | int8 us  GB/s | int8/fp16 | int8-fp16 max|d|\n");
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreate(&stream));
    int failures = 0;
    const int shapes[][2] = {{1, 1024}, {16, 1024}, {64, 1024}, {1, 2048}, {16, 2048}, {64, 2048}};
    for (const auto& shape : shapes) {
        Problem p = make(shape[0], shape[1], prop.multiProcessorCount);
        decode(p, attention_decode_hd128, false, stream);
        CUDA_CHECK(cudaStreamSynchronize(stream));
        std::vector<float> fp16 = output(p);
        decode(p, attention_decode_int8_hd128, true, stream);
        CUDA_CHECK(cudaStreamSynchronize(stream));
        std::vector<float> int8 = output(p);
        const double quantError = maxAbsDiff(int8, fp16);
        // Values in ±2 at 255 levels: a code is within 1/127 of its FP16 value, a key's error moves the softmax
        // weights by about a percent; 5e-2 catches a broken cache layout (errors of order 1), not quantization.
        if (!(quantError < 5e-2)) failures++;
        const float t16 = timeDecode(p, attention_decode_hd128, false, stream);
        const float t8 = timeDecode(p, attention_decode_int8_hd128, true, stream);
        const double bytes16 = 2.0 * p.batch * p.context * kHidden * 2;
        const double bytes8 = 2.0 * p.batch * p.context * ((double) kHidden + kHeads * 8);
        std::printf("%5d %7d | %7.1f %5.0f | %7.1f %5.0f | %9.2f | %16.2e\n", p.batch, p.context, t16,
                    bytes16 / t16 / 1e3, t8, bytes8 / t8 / 1e3, t8 / t16, quantError);
        release(p);
    }
    std::printf("checks: %d failure(s)\n", failures);
    return failures == 0 ? 0 : 1;
}
