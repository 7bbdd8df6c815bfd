// OPT causal multi-head self-attention over an FP16 KV cache, for a micro-batch of sequences of different
// lengths: a KV append kernel, a split-K decode kernel (one new token per sequence, flash-decoding) with its
// combine kernel, and a tiled causal prefill kernel on the tensor cores (mma.sync m16n8k16, FP16 in, FP32
// accumulate; flash-attention 2 style: online softmax, P kept in registers).
//
// Conventions (as OPT's CPU path in runtime/.../model/opt):
//   * q: (rows, ldq) FP16, the q_proj output ALREADY SCALED by 1/sqrt(headDim); head h of row r at
//     q[r × ldq + h × headDim .. + headDim). ldq = hidden, or 3 × hidden when q/k/v share one buffer.
//   * KV cache: per sequence and layer one contiguous K and one V buffer of (capacity, cacheStride) FP16
//     (cacheStride = hidden = heads × headDim); token t of head h at cache[t × cacheStride + h × headDim].
//   * Softmax in FP32; out: (rows, ldo) FP16, heads concatenated (the input of out_proj).
//   * Alignment: q, out, caches 16-byte aligned; ldq, ldo, ldNew, cacheStride multiples of 8.
//
// A micro-batch is described by an array of AttentionSeq in device memory, one per sequence, 32 bytes each:
//
//   offset  0  u64  k          this layer's K cache of the sequence, (capacity, cacheStride) FP16
//   offset  8  u64  v          this layer's V cache, same shape
//   offset 16  i32  rowStart   first row of the sequence in q / out / the new K,V rows (rows of one
//                              sequence are consecutive; sequences in any order, no gaps required)
//   offset 20  i32  newTokens  rows this step (1 for a decode step; ≥ 1 for a prefill chunk)
//   offset 24  i32  pastLen    tokens already in the cache before this step
//   offset 28  i32  reserved   0
//
// INT8 KV cache (the `_int8` kernels; KvPrecision.INT8 of the CPU path, QuantizedKvRows' scheme): every
// (token, head) group of headDim channels is stored as codes 0..255 with an FP32 scale and minimum,
// x̂ = code · scale + minimum, scale = (max − min) / 255, code = round((x − min) / scale) (0 when scale is 0).
// Per sequence, layer and K or V one block: codes (capacity, cacheStride) u8, then params (capacity, heads)
// × {scale, minimum} FP32 at byte offset capacity × cacheStride (8-byte aligned: cacheStride % 8 == 0; the decode
// reads 16 codes at a time, so it needs cacheStride % 16 == 0);
// AttentionSeq.k / .v point at the codes and .reserved holds capacity. Half the bytes of an FP16 cache plus
// 8 bytes per (token, head): what decode attention, bound by reading the cache, gains.
//
// Per layer and step the caller launches kv_cache_append first (it writes rows pastLen .. pastLen +
// newTokens − 1 of each cache; capacity ≥ pastLen + newTokens is the caller's job), then attention: the
// attention kernels read new tokens' keys from the cache, so query i of a sequence (absolute position
// pastLen + i) attends over cache rows 0 .. pastLen + i.
#include <cuda_fp16.h>
#include <stdint.h>

struct AttentionSeq {
    __half* k;
    __half* v;
    int rowStart;
    int newTokens;
    int pastLen;
    int reserved;
};
static_assert(sizeof(AttentionSeq) == 32, "AttentionSeq is a 32-byte wire layout shared with the Java launcher");

namespace attention {

constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ void load8(const __half* p, float out[8]) {
    uint4 raw = *reinterpret_cast<const uint4*>(p);
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 f = __half22float2(h[i]);
        out[2 * i] = f.x;
        out[2 * i + 1] = f.y;
    }
}

// Code i (0..3) of a word of four u8 codes as a float, exactly: the byte goes into the low mantissa bits of 2^23
// (one byte permute) and 2^23 is subtracted (one FP32 add), instead of a shift, a mask and the quarter-rate I2F
// (measured 22-24 % faster decode at batch 16-64 than the I2F version, kernels/bench/NOTES.md).
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

// A 16-byte vector of a cache row as floats: 8 FP16 values, or 16 INT8 codes.
template <bool kInt8>
__device__ __forceinline__ void widen(const uint4& r, float out[kInt8 ? 16 : 8]) {
    const unsigned w[4] = {r.x, r.y, r.z, r.w};
    if constexpr (kInt8) {
#pragma unroll
        for (int i = 0; i < 16; i++) out[i] = codeFloat(w[i >> 2], i & 3);
    } else {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
            out[2 * i] = f.x;
            out[2 * i + 1] = f.y;
        }
    }
}

// The {scale, minimum} table of an INT8 cache block whose codes start at `codes`.
__device__ __forceinline__ const float2* int8Params(const void* codes, int capacity, int cacheStride) {
    return reinterpret_cast<const float2*>(reinterpret_cast<const uint8_t*>(codes) + (size_t) capacity * cacheStride);
}

// The sequence row r belongs to, or -1 (called by the whole block; `found` in shared memory).
__device__ __forceinline__ int findSequence(const AttentionSeq* seqs, int numSeqs, int r, int* found) {
    if (threadIdx.x == 0) *found = -1;
    __syncthreads();
    for (int s = threadIdx.x; s < numSeqs; s += blockDim.x) {
        if (r >= seqs[s].rowStart && r < seqs[s].rowStart + seqs[s].newTokens) *found = s;
    }
    __syncthreads();
    return *found;
}

} // namespace attention

// ---------------------------------------------------------------------------------------------------
// KV append. kNew, vNew: (rows, ldNew) FP16, the k_proj / v_proj outputs of this step (row r of the
// micro-batch belongs to the sequence whose [rowStart, rowStart + newTokens) holds r); hidden elements per
// row are copied to cache row pastLen + (r − rowStart). grid = (rows), block = (128) or any multiple of 32.
// Rows that belong to no sequence are skipped.
// ---------------------------------------------------------------------------------------------------
extern "C" __global__ void kv_cache_append(const AttentionSeq* seqs, int numSeqs, const __half* kNew,
                                           const __half* vNew, int ldNew, int hidden, int cacheStride) {
    const int r = blockIdx.x;
    __shared__ int found;
    if (attention::findSequence(seqs, numSeqs, r, &found) < 0) return;
    const AttentionSeq d = seqs[found];
    const size_t cacheRow = (size_t) (d.pastLen + r - d.rowStart) * cacheStride;
    const uint4* ks = reinterpret_cast<const uint4*>(kNew + (size_t) r * ldNew);
    const uint4* vs = reinterpret_cast<const uint4*>(vNew + (size_t) r * ldNew);
    uint4* kd = reinterpret_cast<uint4*>(d.k + cacheRow);
    uint4* vd = reinterpret_cast<uint4*>(d.v + cacheRow);
    for (int i = threadIdx.x; i < hidden / 8; i += blockDim.x) {
        uint4 a = ks[i];
        uint4 b = vs[i];
        kd[i] = a;
        vd[i] = b;
    }
}

// INT8 append: the same rows quantized per (token, head) group into the codes and params of an INT8 cache (see
// the top of this file); one warp per group, headDim 64 or 128. grid = (rows), block = any multiple of 32.
extern "C" __global__ void kv_cache_append_int8(const AttentionSeq* seqs, int numSeqs, const __half* kNew,
                                                const __half* vNew, int ldNew, int hidden, int cacheStride,
                                                int headDim) {
    const int r = blockIdx.x;
    __shared__ int found;
    if (attention::findSequence(seqs, numSeqs, r, &found) < 0) return;
    const AttentionSeq d = seqs[found];
    const int position = d.pastLen + r - d.rowStart;
    const int heads = hidden / headDim, perLane = headDim / 32;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int group = warp; group < 2 * heads; group += warps) {
        const bool isValue = group >= heads;
        const int head = isValue ? group - heads : group;
        const __half* src = (isValue ? vNew : kNew) + (size_t) r * ldNew + head * headDim;
        void* block = isValue ? (void*) d.v : (void*) d.k;
        float x[4];
        float lo = INFINITY, hi = -INFINITY;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (i < perLane) {
                x[i] = __half2float(src[lane + 32 * i]);
                lo = fminf(lo, x[i]);
                hi = fmaxf(hi, x[i]);
            }
        }
#pragma unroll
        for (int offset = 16; offset > 0; offset >>= 1) {
            lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, offset));
            hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, offset));
        }
        // As QuantizedKvRows: scale = (max − min) / 255, code = Math.round((x − min) / scale), clamped.
        const float scale = __fdiv_rn(__fsub_rn(hi, lo), 255.f);
        uint8_t* codes = reinterpret_cast<uint8_t*>(block) + (size_t) position * cacheStride + head * headDim;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (i < perLane) {
                float code = scale > 0.f ? floorf(__fadd_rn(__fdiv_rn(__fsub_rn(x[i], lo), scale), 0.5f)) : 0.f;
                codes[lane + 32 * i] = (uint8_t) fminf(255.f, fmaxf(0.f, code));
            }
        }
        if (lane == 0) {
            float2* params = const_cast<float2*>(attention::int8Params(block, d.reserved, cacheStride));
            params[(size_t) position * heads + head] = make_float2(scale, lo);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Decode: every sequence in seqs has newTokens == 1 (its query is row rowStart); context L = pastLen + 1.
// Split-K: split x of a sequence handles keys [x × keysPerSplit, min(L, (x + 1) × keysPerSplit)).
//   grid  = (maxSplits, heads, numSeqs), maxSplits = ceil(max L / keysPerSplit); block = (128)
//   dynamic shared memory = keysPerSplit × 4 bytes (scores); keysPerSplit a multiple of 32, ≤ 4096 (the INT8
//   kernels hold 16 KiB of static shared memory; the total must stay ≤ 48 KiB)
//   partialO: (numSeqs, heads, maxSplits, headDim) FP32, partialMl: (numSeqs, heads, maxSplits, 2) FP32
//   workspace, only touched for sequences with more than one split.
// A sequence that fits one split is finished here (out written); others need attention_decode_combine.
// Choice of keysPerSplit (what the harness does): aim for ≥ 4 blocks per multiprocessor,
//   splits = clamp(ceil(4 × SMs / (numSeqs × heads)), 1, ceil(maxL / 128)),
//   keysPerSplit = roundUp(ceil(maxL / splits), 64), with maxL rounded up to a bucket (128, 192, 256, 384, ...;
//   AttentionKernels.decodeSplit) so that a CUDA graph of the launch serves many steps: splits past a sequence's
//   context, the longest one's included, return at once, and a block's work is its keys, not keysPerSplit.
// ---------------------------------------------------------------------------------------------------
namespace attention {

constexpr int kDecodeThreads = 128;

template <int D, bool kInt8>
__device__ void attentionDecode(const AttentionSeq* __restrict__ seqs, const __half* __restrict__ q, int ldq,
                                int cacheStride, int keysPerSplit, float* __restrict__ partialO,
                                float* __restrict__ partialMl, __half* __restrict__ out, int ldo) {
    // A thread takes kDims dims of a row, kUnroll rows in flight: FP16 16 dims (two 16-byte loads) × 4 rows, INT8 32
    // codes × 2 rows. Measured side by side (attention_int8_test, kernels/bench/NOTES.md): FP16 8 dims × 4 rows (the
    // first version) was 1.3-1.5x slower, its 8 × 8 slower still; INT8 16 × 4 was 1.15-1.35x slower at batch 16-64,
    // 8 × 8 2x: fewer threads per row means fewer shuffle reductions per byte read, which is what INT8 codes cost.
    constexpr int kDims = kInt8 ? 32 : 16;                         // dims of a row per thread
    constexpr int kElementBytes = kInt8 ? 1 : 2;
    constexpr int kVectors = kDims * kElementBytes / 16;           // 16-byte loads per row and thread
    constexpr int kThreadsPerKey = D / kDims;
    constexpr int kKeysPerPass = kDecodeThreads / kThreadsPerKey;  // rows one pass of the block covers
    constexpr int kUnroll = kInt8 ? 2 : 4;                         // rows in flight per thread
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
    // a thread's share of row `key`: kVectors 16-byte vectors at kRows + key × rowBytes (FP16 values or INT8 codes)
    const size_t rowBytes = (size_t) cacheStride * kElementBytes;
    const size_t offset = ((size_t) first * cacheStride + h * D + part * kDims) * kElementBytes;
    const uint8_t* kRows = reinterpret_cast<const uint8_t*>(d.k) + offset;
    const uint8_t* vRows = reinterpret_cast<const uint8_t*>(d.v) + offset;
    // INT8: q·k̂ = scale · (q·codes) + minimum · Σq, so each part adds its share of Σq once per key.
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
#pragma unroll
                for (int g = 0; g < kVectors; g++) {
                    float kv[16 / kElementBytes];
                    widen<kInt8>(*reinterpret_cast<const uint4*>(kRows + (size_t) key * rowBytes + 16 * g), kv);
#pragma unroll
                    for (int i = 0; i < 16 / kElementBytes; i++)
                        partial[u] = fmaf(qv[g * (16 / kElementBytes) + i], kv[i], partial[u]);
                }
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

    // P·V: thread (slot, part) sums rows slot, slot + kKeysPerPass, ... over its kDims dims
    float acc[kDims];
#pragma unroll
    for (int i = 0; i < kDims; i++) acc[i] = 0.f;
    float minimumSum = 0.f; // INT8: Σ p · minimum over this thread's keys, added to every dim at the end
    for (int base = 0; base < keys; base += kKeysPerPass * kUnroll) {
        uint4 raw[kUnroll][kVectors]; // rows widened at use: fewer registers in flight
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int key = base + u * kKeysPerPass + slot;
            if (key < keys) {
#pragma unroll
                for (int g = 0; g < kVectors; g++) raw[u][g] = *reinterpret_cast<const uint4*>(vRows + (size_t) key * rowBytes + 16 * g);
            }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int key = base + u * kKeysPerPass + slot;
            if (key < keys) {
                float p = scores[key];
                if constexpr (kInt8) { // p · v̂ = (p · scale) · codes + p · minimum
                    const float2 sm = vParams[(size_t) key * heads];
                    minimumSum = fmaf(p, sm.y, minimumSum);
                    p *= sm.x;
                }
#pragma unroll
                for (int g = 0; g < kVectors; g++) {
                    float vv[16 / kElementBytes];
                    widen<kInt8>(raw[u][g], vv);
#pragma unroll
                    for (int i = 0; i < 16 / kElementBytes; i++)
                        acc[g * (16 / kElementBytes) + i] = fmaf(p, vv[i], acc[g * (16 / kElementBytes) + i]);
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

} // namespace attention

#define ATTENTION_DECODE(name, D, INT8)                                                                           \
    extern "C" __global__ void __launch_bounds__(attention::kDecodeThreads)                                           \
    name(const AttentionSeq* seqs, const __half* q, int ldq, int cacheStride, int keysPerSplit, float* partialO,      \
         float* partialMl, __half* out, int ldo) {                                                                    \
        attention::attentionDecode<D, INT8>(seqs, q, ldq, cacheStride, keysPerSplit, partialO, partialMl, out, ldo); \
    }
ATTENTION_DECODE(attention_decode_hd64, 64, false)
ATTENTION_DECODE(attention_decode_hd128, 128, false)
ATTENTION_DECODE(attention_decode_int8_hd64, 64, true)
ATTENTION_DECODE(attention_decode_int8_hd128, 128, true)
#undef ATTENTION_DECODE

// Merges the splits of the decode kernel (log-sum-exp weights): grid = (heads, numSeqs), block = (headDim).
// Same seqs, keysPerSplit, maxSplits and workspace as the decode launch; sequences of one split are skipped.
extern "C" __global__ void attention_decode_combine(const AttentionSeq* seqs, int keysPerSplit, int maxSplits,
                                                    const float* partialO, const float* partialMl,
                                                    __half* out, int ldo) {
    const int s = blockIdx.y, h = blockIdx.x, heads = gridDim.x, D = blockDim.x, dim = threadIdx.x;
    const AttentionSeq d = seqs[s];
    const int splits = (d.pastLen + 1 + keysPerSplit - 1) / keysPerSplit;
    if (splits <= 1) return;
    const size_t at = ((size_t) s * heads + h) * maxSplits;
    float m = -INFINITY;
    for (int i = 0; i < splits; i++) m = fmaxf(m, partialMl[(at + i) * 2]);
    float l = 0.f, o = 0.f;
    for (int i = 0; i < splits; i++) {
        float w = exp2f((partialMl[(at + i) * 2] - m) * attention::kLog2e);
        l = fmaf(partialMl[(at + i) * 2 + 1], w, l);
        o = fmaf(partialO[(at + i) * D + dim], w, o);
    }
    out[(size_t) d.rowStart * ldo + h * D + dim] = __float2half_rn(o / l);
}

// ---------------------------------------------------------------------------------------------------
// Prefill (any newTokens ≥ 1, causal, over past + new keys): a block takes 64 query rows of one sequence
// and head; each of its 4 warps owns 16 rows and walks the key tiles of 64 up to its causal limit.
//   grid  = (ceil(max newTokens / 64), heads, numSeqs), block = (128), static shared memory only
//   (34.8 KB at headDim 128, 18.4 KB at 64). Blocks past a sequence's newTokens exit at once; the
//   heaviest (last) query tiles are scheduled first.
// ---------------------------------------------------------------------------------------------------
namespace attention {

constexpr int kTileRows = 64; // query rows per block, keys per tile
constexpr int kPrefillThreads = 128;

__device__ __forceinline__ unsigned smemAddress(const void* p) {
    return (unsigned) __cvta_generic_to_shared(p);
}

__device__ __forceinline__ void cpAsync16(void* smem, const void* global, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smemAddress(smem)), "l"(global),
                 "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cpAsyncWait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrixX4(unsigned r[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smemAddress(p)));
}
__device__ __forceinline__ void ldmatrixX4Trans(unsigned r[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smemAddress(p)));
}

// c += a · b, m16n8k16, A row-major (4 × f16x2), B column-major (2 × f16x2), C/D FP32 (4).
__device__ __forceinline__ void mma16816(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned packHalf2(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&h);
}

// Loads keys [first, first + 64) of one head into a (64, D + 8) shared tile; rows at or past `end` are zeros.
template <int D>
__device__ __forceinline__ void loadTile(__half (*tile)[D + 8], const __half* cache, int cacheStride, int head,
                                         int first, int end) {
    constexpr int kChunks = D / 8;
    for (int i = threadIdx.x; i < kTileRows * kChunks; i += kPrefillThreads) {
        int row = i / kChunks, chunk = i % kChunks;
        bool valid = first + row < end;
        const __half* src = cache + (size_t) (valid ? first + row : 0) * cacheStride + head * D + chunk * 8;
        cpAsync16(&tile[row][chunk * 8], src, valid);
    }
}

// The INT8 cache's rows dequantized into the same FP16 tile, with plain loads and stores (the FP16 path's
// cp.async groups are then empty; the kernel's barriers order these stores as they order the async copies).
template <int D>
__device__ __forceinline__ void loadTileInt8(__half (*tile)[D + 8], const __half* cache, int capacity, int cacheStride,
                                             int head, int first, int end) {
    constexpr int kChunks = D / 8;
    const int heads = cacheStride / D;
    const uint8_t* codes = reinterpret_cast<const uint8_t*>(cache);
    const float2* params = int8Params(cache, capacity, cacheStride);
    for (int i = threadIdx.x; i < kTileRows * kChunks; i += kPrefillThreads) {
        int row = i / kChunks, chunk = i % kChunks;
        uint4 packed = make_uint4(0, 0, 0, 0);
        if (first + row < end) {
            float c[8];
            load8Codes(codes + (size_t) (first + row) * cacheStride + head * D + chunk * 8, c);
            const float2 sm = params[(size_t) (first + row) * heads + head];
            __half2* h2 = reinterpret_cast<__half2*>(&packed);
#pragma unroll
            for (int k = 0; k < 4; k++) h2[k] = __floats2half2_rn(fmaf(c[2 * k], sm.x, sm.y), fmaf(c[2 * k + 1], sm.x, sm.y));
        }
        *reinterpret_cast<uint4*>(&tile[row][chunk * 8]) = packed;
    }
}

template <int D, bool kInt8>
__device__ __forceinline__ void loadCacheTile(__half (*tile)[D + 8], const __half* cache, int capacity, int cacheStride,
                                              int head, int first, int end) {
    if constexpr (kInt8) {
        loadTileInt8<D>(tile, cache, capacity, cacheStride, head, first, end);
    } else {
        loadTile<D>(tile, cache, cacheStride, head, first, end);
    }
}

template <int D, bool kInt8>
__device__ void attentionPrefill(const AttentionSeq* __restrict__ seqs, const __half* __restrict__ q, int ldq,
                                 int cacheStride, __half* __restrict__ out, int ldo) {
    constexpr int kDimChunks = D / 16; // k-steps of Q·Kᵀ, pairs of 8-wide output tiles of P·V
    constexpr int kKeyTiles8 = kTileRows / 8;
    __shared__ __align__(16) __half sK[kTileRows][D + 8]; // +8 halves: ldmatrix rows land in distinct banks
    __shared__ __align__(16) __half sV[kTileRows][D + 8];

    const int s = blockIdx.z, h = blockIdx.y;
    const int qTile = gridDim.x - 1 - blockIdx.x;
    const AttentionSeq d = seqs[s];
    const int n = d.newTokens, past = d.pastLen;
    if (qTile * kTileRows >= n) return;
    const int context = past + n;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int row0 = qTile * kTileRows + warp * 16; // this warp's first query row within the sequence

    // Q fragments (A operand) straight from global memory: rows g and g + 8, columns 2t.. and 2t + 8..
    unsigned qf[kDimChunks][4];
#pragma unroll
    for (int kc = 0; kc < kDimChunks; kc++) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int r = row0 + g + (i & 1) * 8;
            int col = kc * 16 + 2 * t + (i >> 1) * 8;
            qf[kc][i] = r < n ? *reinterpret_cast<const unsigned*>(q + (size_t) (d.rowStart + r) * ldq + h * D + col)
                              : 0u;
        }
    }

    float o[2 * kDimChunks][4];
#pragma unroll
    for (int j = 0; j < 2 * kDimChunks; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    float mLog2[2] = {-INFINITY, -INFINITY}; // running max (×log2 e) of rows g and g + 8
    float l[2] = {0.f, 0.f};                  // this thread's share of the running sums

    const int keyEnd = min(context, past + qTile * kTileRows + kTileRows); // block's causal limit
    const int tiles = (keyEnd + kTileRows - 1) / kTileRows;
    loadCacheTile<D, kInt8>(sK, d.k, d.reserved, cacheStride, h, 0, keyEnd);
    cpAsyncCommit();
    for (int kt = 0; kt < tiles; kt++) {
        const int firstKey = kt * kTileRows;
        cpAsyncWait<0>();
        __syncthreads(); // K(kt) visible; every warp is done with V(kt − 1)
        loadCacheTile<D, kInt8>(sV, d.v, d.reserved, cacheStride, h, firstKey, keyEnd);
        cpAsyncCommit();

        float sc[kKeyTiles8][4];
#pragma unroll
        for (int j = 0; j < kKeyTiles8; j++) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.f;
#pragma unroll
        for (int np = 0; np < kKeyTiles8 / 2; np++) {
#pragma unroll
            for (int kc = 0; kc < kDimChunks; kc++) {
                unsigned b[4];
                int m8 = lane >> 3;
                ldmatrixX4(b, &sK[np * 16 + (m8 >> 1) * 8 + (lane & 7)][kc * 16 + (m8 & 1) * 8]);
                mma16816(sc[2 * np], qf[kc], b[0], b[1]);
                mma16816(sc[2 * np + 1], qf[kc], b[2], b[3]);
            }
        }
        __syncthreads(); // every warp is done with K(kt)
        if (kt + 1 < tiles) loadCacheTile<D, kInt8>(sK, d.k, d.reserved, cacheStride, h, firstKey + kTileRows, keyEnd);
        cpAsyncCommit();

        // causal mask, only where the tile reaches past this warp's first row
        if (firstKey + kTileRows > past + row0 + 1) {
#pragma unroll
            for (int j = 0; j < kKeyTiles8; j++) {
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    int key = firstKey + j * 8 + 2 * t + (i & 1);
                    int r = row0 + g + (i >> 1) * 8;
                    if (key > past + r || key >= context) sc[j][i] = -INFINITY;
                }
            }
        }
        // online softmax of rows g (i = 0, 1) and g + 8 (i = 2, 3); a quad of lanes shares a row
        float alpha[2];
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < kKeyTiles8; j++) mx = fmaxf(mx, fmaxf(sc[j][2 * hr], sc[j][2 * hr + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            float mNew = fmaxf(mLog2[hr], mx * kLog2e);
            alpha[hr] = exp2f(mLog2[hr] - mNew); // 0 on the first tile (−inf − finite)
            mLog2[hr] = mNew;
            float sum = 0.f;
#pragma unroll
            for (int j = 0; j < kKeyTiles8; j++) {
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    float p = exp2f(fmaf(sc[j][2 * hr + i], kLog2e, -mNew));
                    sc[j][2 * hr + i] = p;
                    sum += p;
                }
            }
            l[hr] = fmaf(l[hr], alpha[hr], sum);
        }
#pragma unroll
        for (int j = 0; j < 2 * kDimChunks; j++) {
            o[j][0] *= alpha[0]; o[j][1] *= alpha[0];
            o[j][2] *= alpha[1]; o[j][3] *= alpha[1];
        }

        cpAsyncWait<1>(); // V(kt) landed (K(kt + 1) may still be in flight)
        __syncthreads();
#pragma unroll
        for (int kc = 0; kc < kKeyTiles8 / 2; kc++) {
            unsigned a[4] = {packHalf2(sc[2 * kc][0], sc[2 * kc][1]), packHalf2(sc[2 * kc][2], sc[2 * kc][3]),
                             packHalf2(sc[2 * kc + 1][0], sc[2 * kc + 1][1]),
                             packHalf2(sc[2 * kc + 1][2], sc[2 * kc + 1][3])};
#pragma unroll
            for (int dp = 0; dp < kDimChunks; dp++) {
                unsigned b[4];
                int m8 = lane >> 3;
                ldmatrixX4Trans(b, &sV[kc * 16 + (m8 & 1) * 8 + (lane & 7)][dp * 16 + (m8 >> 1) * 8]);
                mma16816(o[2 * dp], a, b[0], b[1]);
                mma16816(o[2 * dp + 1], a, b[2], b[3]);
            }
        }
    }

#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        l[hr] += __shfl_xor_sync(0xffffffffu, l[hr], 1);
        l[hr] += __shfl_xor_sync(0xffffffffu, l[hr], 2);
    }
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        int r = row0 + g + hr * 8;
        if (r >= n) continue;
        float inv = 1.f / l[hr];
        __half* dst = out + (size_t) (d.rowStart + r) * ldo + h * D + 2 * t;
#pragma unroll
        for (int j = 0; j < 2 * kDimChunks; j++)
            *reinterpret_cast<__half2*>(dst + j * 8) =
                    __floats2half2_rn(o[j][2 * hr] * inv, o[j][2 * hr + 1] * inv);
    }
}

} // namespace attention

#define ATTENTION_PREFILL(name, D, INT8)                                                                          \
    extern "C" __global__ void __launch_bounds__(attention::kPrefillThreads)                                          \
    name(const AttentionSeq* seqs, const __half* q, int ldq, int cacheStride, __half* out, int ldo) {                 \
        attention::attentionPrefill<D, INT8>(seqs, q, ldq, cacheStride, out, ldo);                                    \
    }
ATTENTION_PREFILL(attention_prefill_hd64, 64, false)
ATTENTION_PREFILL(attention_prefill_hd128, 128, false)
ATTENTION_PREFILL(attention_prefill_int8_hd64, 64, true)
ATTENTION_PREFILL(attention_prefill_int8_hd128, 128, true)
#undef ATTENTION_PREFILL
