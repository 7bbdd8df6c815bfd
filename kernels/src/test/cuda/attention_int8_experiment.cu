// EXPERIMENT for the next GPU session (not shipped; never run yet): a variant of the INT8 decode attention of
// attention.cu, written when the shipped one measured slower than the FP16 cache (docs/cuda-backend.md, "INT8 KV
// cache"). Differences: codes widened by one byte permute into the mantissa of 2^23 and one FP32 subtract (exact, no
// shift/mask/I2F), 8 rows of raw codes in flight per thread (the FP16 path's 64 bytes) widened at use, and V's
// minimum term summed once per key. attention_int8_test.cu checks it against the shipped kernels and times both.
#pragma once

#include "../../main/cuda/attention.cu"

namespace attention_x {
using namespace attention;

// Code i (0..3) of a word of four u8 codes as a float, exactly: the byte goes into the low mantissa bits of 2^23
// (one byte permute) and 2^23 is subtracted (one FP32 add), instead of a shift, a mask and the quarter-rate I2F.
__device__ __forceinline__ float codeFloat(unsigned word, int i) {
    return __uint_as_float(__byte_perm(word, 0x4b000000u, 0x7650u | i)) - 8388608.f;
}

// 8 INT8-cache codes (u8) at p, 8-byte aligned, as floats.
__device__ __forceinline__ void load8Codes(const void* p, float out[8]) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        out[i] = codeFloat(raw.x, i);
        out[4 + i] = codeFloat(raw.y, i);
    }
}

template <int D, bool kInt8>
__device__ void attentionDecode(const AttentionSeq* __restrict__ seqs, const __half* __restrict__ q, int ldq,
                                int cacheStride, int keysPerSplit, float* __restrict__ partialO,
                                float* __restrict__ partialMl, __half* __restrict__ out, int ldo) {
    constexpr int kDims = 8;                                       // dims of a row per thread
    constexpr int kThreadsPerKey = D / kDims;
    constexpr int kKeysPerPass = kDecodeThreads / kThreadsPerKey;  // rows one pass of the block covers
    // Rows in flight per thread: FP16 4 (8 measured slower); INT8 8, the same 64 bytes in flight.
    constexpr int kUnroll = kInt8 ? 8 : 4;
    extern __shared__ float scores[];                              // (keysPerSplit)
    __shared__ float reduceScratch[kDecodeThreads / 32];
    __shared__ float accScratch[kKeysPerPass][D];

    const int s = blockIdx.z, h = blockIdx.y, split = blockIdx.x;
    const int heads = gridDim.y, maxSplits = gridDim.x;
    const AttentionSeq d = seqs[s];
    const int context = d.pastLen + 1;
    const int first = split * keysPerSplit;
    if (first >= context) return;
    const int keys = min(keysPerSplit, context - first);
    const int splits = (context + keysPerSplit - 1) / keysPerSplit;

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int part = threadIdx.x % kThreadsPerKey; // which kDims dims of a row
    const int slot = threadIdx.x / kThreadsPerKey; // which row of a pass
    float qv[kDims];
#pragma unroll
    for (int i = 0; i < kDims; i += 8) load8(q + (size_t) d.rowStart * ldq + h * D + part * kDims + i, qv + i);
    const __half* kBase = d.k + (size_t) first * cacheStride + h * D + part * kDims;
    const __half* vBase = d.v + (size_t) first * cacheStride + h * D + part * kDims;
    // INT8: q·k̂ = scale · (q·codes) + minimum · Σq, so each part adds its share of Σq once per key.
    const uint8_t* kCodes = reinterpret_cast<const uint8_t*>(d.k) + (size_t) first * cacheStride + h * D + part * kDims;
    const uint8_t* vCodes = reinterpret_cast<const uint8_t*>(d.v) + (size_t) first * cacheStride + h * D + part * kDims;
    const float2* kParams = kInt8 ? int8Params(d.k, d.reserved, cacheStride) + (size_t) first * heads + h : nullptr;
    const float2* vParams = kInt8 ? int8Params(d.v, d.reserved, cacheStride) + (size_t) first * heads + h : nullptr;
    float qSum = 0.f;
#pragma unroll
    for (int i = 0; i < kDims; i++) qSum += qv[i];

    // scores: kUnroll rows per thread loaded before any is reduced
    for (int base = 0; base < keys; base += kKeysPerPass * kUnroll) {
        float partial[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int key = base + u * kKeysPerPass + slot;
            partial[u] = 0.f;
            if (key < keys) {
                float kv[kDims];
                if constexpr (kInt8) {
                    load8Codes(kCodes + (size_t) key * cacheStride, kv);
                } else {
                    load8(kBase + (size_t) key * cacheStride, kv);
                }
#pragma unroll
                for (int i = 0; i < kDims; i++) partial[u] = fmaf(qv[i], kv[i], partial[u]);
                if constexpr (kInt8) {
                    const float2 sm = kParams[(size_t) key * heads];
                    partial[u] = fmaf(sm.x, partial[u], sm.y * qSum);
                }
            }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
#pragma unroll
            for (int offset = kThreadsPerKey / 2; offset > 0; offset >>= 1)
                partial[u] += __shfl_xor_sync(0xffffffffu, partial[u], offset);
            int key = base + u * kKeysPerPass + slot;
            if (part == 0 && key < keys) scores[key] = partial[u];
        }
    }
    __syncthreads();

    float m = -INFINITY;
    for (int i = threadIdx.x; i < keys; i += kDecodeThreads) m = fmaxf(m, scores[i]);
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
    if (lane == 0) reduceScratch[warp] = m;
    __syncthreads();
    m = reduceScratch[0];
#pragma unroll
    for (int w = 1; w < kDecodeThreads / 32; w++) m = fmaxf(m, reduceScratch[w]);
    const float mLog2 = m * kLog2e;
    float l = 0.f;
    for (int i = threadIdx.x; i < keys; i += kDecodeThreads) {
        float p = exp2f(fmaf(scores[i], kLog2e, -mLog2));
        scores[i] = p;
        l += p;
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) l += __shfl_xor_sync(0xffffffffu, l, offset);
    __syncthreads(); // everyone has read reduceScratch's maxima, and scores holds p
    if (lane == 0) reduceScratch[warp] = l;

    // P·V: thread (slot, part) sums rows slot, slot + kKeysPerPass, ... over its 8 dims
    float acc[kDims];
#pragma unroll
    for (int i = 0; i < kDims; i++) acc[i] = 0.f;
    float minimumSum = 0.f; // INT8: Σ p · minimum over this thread's keys, added to every dim at the end
    for (int base = 0; base < keys; base += kKeysPerPass * kUnroll) {
        float vv[kInt8 ? 1 : kUnroll][kDims]; // FP16 rows, widened at load
        uint2 raw[kInt8 ? kUnroll : 1];        // INT8 rows, widened at use (fewer registers in flight)
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int key = base + u * kKeysPerPass + slot;
            if (key < keys) {
                if constexpr (kInt8) {
                    raw[u] = *reinterpret_cast<const uint2*>(vCodes + (size_t) key * cacheStride);
                } else {
                    load8(vBase + (size_t) key * cacheStride, vv[u]);
                }
            }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int key = base + u * kKeysPerPass + slot;
            if (key < keys) {
                float p = scores[key];
                if constexpr (kInt8) { // p · v̂ = (p · scale) · codes + p · minimum
                    const float2 sm = vParams[(size_t) key * heads];
                    const float ps = p * sm.x;
                    minimumSum = fmaf(p, sm.y, minimumSum);
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        acc[i] = fmaf(ps, codeFloat(raw[u].x, i), acc[i]);
                        acc[4 + i] = fmaf(ps, codeFloat(raw[u].y, i), acc[4 + i]);
                    }
                } else {
#pragma unroll
                    for (int i = 0; i < kDims; i++) acc[i] = fmaf(p, vv[u][i], acc[i]);
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < kDims; i++) accScratch[slot][part * kDims + i] = acc[i] + minimumSum;
    __syncthreads();
    l = 0.f;
#pragma unroll
    for (int w = 0; w < kDecodeThreads / 32; w++) l += reduceScratch[w];

    for (int dim = threadIdx.x; dim < D; dim += kDecodeThreads) {
        float o = 0.f;
#pragma unroll
        for (int k = 0; k < kKeysPerPass; k++) o += accScratch[k][dim];
        if (splits == 1) {
            out[(size_t) d.rowStart * ldo + h * D + dim] = __float2half_rn(o / l);
        } else {
            size_t at = ((size_t) s * heads + h) * maxSplits + split;
            partialO[at * D + dim] = o;
            if (dim == 0) {
                partialMl[at * 2] = m;
                partialMl[at * 2 + 1] = l;
            }
        }
    }
}

} // namespace attention_x

extern "C" __global__ void __launch_bounds__(attention::kDecodeThreads)
attention_decode_int8x_hd128(const AttentionSeq* seqs, const __half* q, int ldq, int cacheStride, int keysPerSplit,
                             float* partialO, float* partialMl, __half* out, int ldo) {
    attention_x::attentionDecode<128, true>(seqs, q, ldq, cacheStride, keysPerSplit, partialO, partialMl, out, ldo);
}
