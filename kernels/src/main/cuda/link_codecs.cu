// Inter-stage link codecs on the GPU: a stage encodes its hidden states on the device, so only the
// packed frame sections (params + payload) cross PCIe, and decodes a received frame on the device.
//
// The params and payload bytes are BYTE-IDENTICAL to the Java codecs' (runtime/.../wire/Int8TokenCodec,
// RptqLinkCodec with Ranges.DYNAMIC, runtime/.../quant/BitPacking) fed the same values as FP32: a GPU stage
// and a CPU stage share one wire format. For FP16 input that means the Java codec fed the FP16 values
// widened to FP32 (exact). What byte identity needs, and why each line is written as it is:
//   * every FP32 operation the Java code does is done once, correctly rounded, in the same order:
//     __fdiv_rn / __frcp_rn / __fsub_rn / __fmul_rn / __fadd_rn, so no FMA contraction and no fast
//     reciprocal can creep in, whatever flags (--use_fast_math) the fatbin is built with;
//   * FP16 scale/minimum choice as the Java code does: round to nearest even (Float.floatToFloat16 ==
//     __float2half_rn), then one FP16 step up or down; rint ties-to-even (__float2int_rn);
//   * min/max follow Math.min/max (-0.0 < +0.0): they are taken on order-preserving integer keys;
//   * packing is BitPacking's dense little-endian bit stream (value i at bits [bits*i, bits*(i+1))).
// Java refuses rows holding NaN/±Inf; a kernel cannot throw, so it ORs 1 into *status (when status is
// non-null) and the caller must refuse the frame (the bytes of such a row are unspecified).
//
// FP16 link codec: on a GPU stage holding FP16 hidden states it is an identity copy of the (rows, width)
// FP16 buffer (little-endian on both ends), so it needs no kernel: cuMemcpyDtoH of rows × width × 2 bytes.
//
// Launch configuration, every kernel here: grid = (rows), one block per token row; blockDim.x a multiple
// of 32, at most 1024 (256 is a good default; 1024 when rows < ~2 × the multiprocessor count, so a few rows
// still draw enough bandwidth). Any block size gives the same bytes; the fast paths hold a row in registers
// when blockDim.x ≥ width / 64 (FP16) or width / 32 (FP32) and otherwise read the row twice. The RPTQ kernels
// give each warp 256 plan positions at a time, so more than ceil(width / 256) warps only idle: for narrow
// rows take 32 × ceil(width / 256) threads. Dynamic shared memory: see each kernel (only RPTQ uses it).
// Pointers: any alignment works; 16-byte aligned rows (width % 8 == 0 and 16-byte aligned bases) and
// 16-byte aligned perm / inversePerm take the vectorised paths. Everything row-major and contiguous: row r
// of the activations starts at r × width.
#include <cuda_fp16.h>
#include <stdint.h>

namespace link_codecs {

constexpr int kMaxBlockWarps = 32;
constexpr float kFp16Max = 65504.f;
constexpr unsigned short kFp16MaxBits = 0x7bff;

__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(__half v) { return __half2float(v); }

__device__ __forceinline__ unsigned short halfBits(float v) { return __half_as_ushort(__float2half_rn(v)); }
__device__ __forceinline__ float bitsToFloat(unsigned short bits) { return __half2float(__ushort_as_half(bits)); }

// Eight consecutive elements starting at p (16-byte aligned for __half, 32-byte for float).
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

__device__ __forceinline__ void load8(const float* p, float out[8]) {
    float4 a = reinterpret_cast<const float4*>(p)[0];
    float4 b = reinterpret_cast<const float4*>(p)[1];
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
}

__device__ __forceinline__ bool aligned(const void* p, unsigned bytes) {
    return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0;
}

// Order-preserving map of FP32 bits to u32: -NaN < -Inf < ... < -0 < +0 < ... < +Inf < +NaN, as
// Math.min/max order the finite values (Java's min picks -0.0 over +0.0).
__device__ __forceinline__ unsigned orderKey(float v) {
    unsigned b = __float_as_uint(v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float keyToFloat(unsigned k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}
constexpr unsigned kKeyNegInf = 0x007fffffu; // orderKey(-Inf); NaNs with the sign bit lie below it
constexpr unsigned kKeyPosInf = 0xff800000u; // orderKey(+Inf); NaNs without it lie above it

// Block-wide max of an unsigned; every thread gets the result. scratch: kMaxBlockWarps words.
__device__ unsigned blockMaxU32(unsigned v, unsigned* scratch) {
    v = __reduce_max_sync(0xffffffffu, v);
    int warp = threadIdx.x >> 5;
    if ((threadIdx.x & 31) == 0) scratch[warp] = v;
    __syncthreads();
    unsigned r = 0;
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) r = max(r, scratch[w]);
    __syncthreads(); // scratch is reused by the caller's next reduction
    return r;
}

// ---------------------------------------------------------------------------------------------------
// INT8 per token (Int8TokenCodec): params = rows × FP16 scale (2 bytes each, little-endian), payload =
// rows × width int8. scale = smallest FP16 ≥ absmax / 127 (capped at 65504; 0 for an all-zero row);
// q = rint(clamp(x / scale, -127, 127)).
// ---------------------------------------------------------------------------------------------------

// Int8TokenCodec.scaleBits
__device__ __forceinline__ unsigned short int8ScaleBits(float absMax) {
    if (absMax == 0.f) return 0;
    float wanted = __fdiv_rn(absMax, 127.f);
    if (wanted >= kFp16Max) return kFp16MaxBits;
    unsigned short bits = halfBits(wanted);
    if (bitsToFloat(bits) < wanted || bits == 0) bits++;
    return bits;
}

// rint(clamp(x / scale, ±127)) with x / scale correctly rounded, as Java divides. The quotient only matters
// through rint and the clamp, so x × (1 / scale) (within ~2 ulp, < 2e-5 at |q| ≤ 128) decides unless it
// lies within 1e-4 of a half-integer or beyond ±126.5; only those rare elements pay for __fdiv_rn.
__device__ __forceinline__ signed char int8Code(float x, float scale, float reciprocal) {
    float approx = __fmul_rn(x, reciprocal);
    if (fabsf(approx) < 126.5f && fabsf(approx - floorf(approx) - 0.5f) > 1e-4f)
        return (signed char) __float2int_rn(approx);
    float y = fminf(127.f, fmaxf(-127.f, __fdiv_rn(x, scale)));
    return (signed char) __float2int_rn(y);
}

// Eight consecutive values of T held in registers in their input format (FP16 keeps two per register).
template <typename T> struct Octet;
template <> struct Octet<__half> {
    unsigned w[4]; // element k: FP16 bits at bit 16 × (k & 1) of w[k / 2]
    __device__ __forceinline__ float get(int k) const {
        return __half2float(__ushort_as_half((unsigned short) (w[k >> 1] >> (16 * (k & 1)))));
    }
    __device__ __forceinline__ void load(const __half* p) { // p 16-byte aligned
        uint4 v = *reinterpret_cast<const uint4*>(p);
        w[0] = v.x; w[1] = v.y; w[2] = v.z; w[3] = v.w;
    }
    __device__ __forceinline__ void gather(const __half* row, const unsigned short index[8]) {
#pragma unroll
        for (int k = 0; k < 4; k++)
            w[k] = __half_as_ushort(row[index[2 * k]]) | (unsigned) __half_as_ushort(row[index[2 * k + 1]]) << 16;
    }
};
template <> struct Octet<float> {
    float f[8];
    __device__ __forceinline__ float get(int k) const { return f[k]; }
    __device__ __forceinline__ void load(const float* p) { load8(p, f); } // p 32-byte aligned
    __device__ __forceinline__ void gather(const float* row, const unsigned short index[8]) {
#pragma unroll
        for (int k = 0; k < 8; k++) f[k] = row[index[k]];
    }
};

// Octets a thread keeps in registers across a block-wide reduction (32 registers for FP16 and FP32 alike):
// enough for width 12288 at 256 threads; wider rows per thread take the path that reads twice.
template <typename T> constexpr int kHeldOctets = sizeof(T) == 2 ? 8 : 4;

template <typename T>
__device__ void int8Encode(const T* __restrict__ x, int width, unsigned short* __restrict__ params,
                           signed char* __restrict__ payload, int* __restrict__ status) {
    __shared__ unsigned scratch[kMaxBlockWarps];
    const int row = blockIdx.x;
    const T* in = x + (size_t) row * width;
    signed char* out = payload + (size_t) row * width;
    const bool vector = (width & 7) == 0 && aligned(in, 8 * sizeof(T)) && aligned(out, 8);
    constexpr int kHeld = kHeldOctets<T>;
    const int octets = width >> 3;

    if (vector && octets <= kHeld * (int) blockDim.x) {
        // one read of the row: its values stay in registers from the absmax to the codes
        Octet<T> held[kHeld];
#pragma unroll
        for (int k = 0; k < kHeld; k++) {
            const int o = threadIdx.x + k * blockDim.x;
            if (o < octets) held[k].load(in + 8 * o);
        }
        unsigned absBits = 0; // max of |x|'s bits: exact, and NaN (bits above +Inf's) wins as it does in Java
#pragma unroll
        for (int k = 0; k < kHeld; k++) {
            if ((int) (threadIdx.x + k * blockDim.x) < octets) {
#pragma unroll
                for (int e = 0; e < 8; e++) absBits = max(absBits, __float_as_uint(held[k].get(e)) & 0x7fffffffu);
            }
        }
        absBits = blockMaxU32(absBits, scratch);
        if (absBits >= 0x7f800000u) {
            if (threadIdx.x == 0 && status != nullptr) atomicOr(status, 1);
            return;
        }
        const unsigned short scaleBits = int8ScaleBits(__uint_as_float(absBits));
        if (threadIdx.x == 0) params[row] = scaleBits;
        const float scale = bitsToFloat(scaleBits);
        const float reciprocal = scale != 0.f ? __frcp_rn(scale) : 0.f;
#pragma unroll
        for (int k = 0; k < kHeld; k++) {
            const int o = threadIdx.x + k * blockDim.x;
            if (o < octets) {
                unsigned packed[2] = {0, 0};
                if (scale != 0.f) {
#pragma unroll
                    for (int e = 0; e < 8; e++)
                        packed[e >> 2] |= (unsigned) (unsigned char) int8Code(held[k].get(e), scale, reciprocal) << (8 * (e & 3));
                }
                *reinterpret_cast<uint2*>(out + 8 * o) = make_uint2(packed[0], packed[1]);
            }
        }
        return;
    }

    // rows too wide for the registers, or unaligned: read the row twice (the second read mostly from L2)
    unsigned absBits = 0;
    if (vector) {
        for (int i = threadIdx.x * 8; i < width; i += blockDim.x * 8) {
            float v[8];
            load8(in + i, v);
#pragma unroll
            for (int k = 0; k < 8; k++) absBits = max(absBits, __float_as_uint(v[k]) & 0x7fffffffu);
        }
    } else {
        for (int i = threadIdx.x; i < width; i += blockDim.x)
            absBits = max(absBits, __float_as_uint(toFloat(in[i])) & 0x7fffffffu);
    }
    absBits = blockMaxU32(absBits, scratch);
    if (absBits >= 0x7f800000u) {
        if (threadIdx.x == 0 && status != nullptr) atomicOr(status, 1);
        return;
    }
    const unsigned short scaleBits = int8ScaleBits(__uint_as_float(absBits));
    if (threadIdx.x == 0) params[row] = scaleBits;
    const float scale = bitsToFloat(scaleBits);
    const float reciprocal = scale != 0.f ? __frcp_rn(scale) : 0.f;

    if (vector) {
        for (int i = threadIdx.x * 8; i < width; i += blockDim.x * 8) {
            float v[8];
            load8(in + i, v);
            unsigned packed[2] = {0, 0};
            if (scale != 0.f) {
#pragma unroll
                for (int k = 0; k < 8; k++)
                    packed[k >> 2] |= (unsigned) (unsigned char) int8Code(v[k], scale, reciprocal) << (8 * (k & 3));
            }
            *reinterpret_cast<uint2*>(out + i) = make_uint2(packed[0], packed[1]);
        }
    } else {
        for (int i = threadIdx.x; i < width; i += blockDim.x)
            out[i] = scale != 0.f ? int8Code(toFloat(in[i]), scale, reciprocal) : (signed char) 0;
    }
}

template <typename T>
__device__ void int8Decode(const unsigned short* __restrict__ params, const signed char* __restrict__ payload,
                           int width, T* __restrict__ out) {
    const int row = blockIdx.x;
    const float scale = bitsToFloat(params[row]);
    const signed char* in = payload + (size_t) row * width;
    T* o = out + (size_t) row * width;
    if constexpr (sizeof(T) == 4) {
        // 4 codes a thread, so a warp's 16-byte stores are one contiguous 512 bytes (with 8 codes a thread, each of
        // the two float4 stores covered every other 16 bytes: FP32 decode of 2048 × 12288 ran at 62 % of a copy)
        if ((width & 3) == 0 && aligned(in, 4) && aligned(o, 16)) {
#pragma unroll 4
            for (int i = threadIdx.x * 4; i < width; i += blockDim.x * 4) {
                const unsigned q = *reinterpret_cast<const unsigned*>(in + i);
                float v[4];
#pragma unroll
                for (int k = 0; k < 4; k++) v[k] = __fmul_rn((float) (signed char) (q >> (8 * k)), scale);
                *reinterpret_cast<float4*>(o + i) = make_float4(v[0], v[1], v[2], v[3]);
            }
            return;
        }
    }
    if ((width & 7) == 0 && aligned(in, 8) && aligned(o, 8 * sizeof(T))) {
        for (int i = threadIdx.x * 8; i < width; i += blockDim.x * 8) {
            uint2 q = *reinterpret_cast<const uint2*>(in + i);
            float v[8];
#pragma unroll
            for (int k = 0; k < 8; k++)
                v[k] = __fmul_rn((float) (signed char) ((k < 4 ? q.x : q.y) >> (8 * (k & 3))), scale);
            if constexpr (sizeof(T) == 2) {
                uint4 h;
                __half2* h2 = reinterpret_cast<__half2*>(&h);
#pragma unroll
                for (int k = 0; k < 4; k++) h2[k] = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
                *reinterpret_cast<uint4*>(o + i) = h;
            } else {
                reinterpret_cast<float4*>(o + i)[0] = make_float4(v[0], v[1], v[2], v[3]);
                reinterpret_cast<float4*>(o + i)[1] = make_float4(v[4], v[5], v[6], v[7]);
            }
        }
        return;
    }
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        float v = __fmul_rn((float) in[i], scale); // Java: q × scale in FP32
        if constexpr (sizeof(T) == 2) o[i] = __float2half_rn(v); else o[i] = v;
    }
}

// ---------------------------------------------------------------------------------------------------
// RPTQ INT4 / INT3, dynamic ranges (RptqLinkCodec, Ranges.DYNAMIC):
//   params  = plan fingerprint (u32) | rows × clusters × { scale (FP16) | minimum (FP16) }
//   payload = per row, the row's codes in plan order (value at plan position j = x[perm[j]]), packed
//             densely (BitPacking), ceil(bits × width / 8) bytes per row.
// Cluster c covers plan positions [clusterStarts[c], clusterStarts[c + 1]); minimum = largest FP16 ≤ the
// cluster's min (clamped to ±65504), scale = smallest FP16 ≥ (max − minimum) / (2^bits − 1) (≤ 65504),
// code = rint(clamp((x − minimum) × (1 / scale), 0, 2^bits − 1)), all 0 when scale is 0.
// ---------------------------------------------------------------------------------------------------

// RptqLinkCodec.fp16AtMost
__device__ __forceinline__ unsigned short fp16AtMost(float v) {
    float clamped = fmaxf(-kFp16Max, fminf(kFp16Max, v));
    unsigned short bits = halfBits(clamped);
    if (bitsToFloat(bits) <= clamped) return bits;
    if (bits == 0) return 0x8001;
    return (bits & 0x8000) ? bits + 1 : bits - 1;
}

// RptqLinkCodec.fp16ScaleAtLeast
__device__ __forceinline__ unsigned short fp16ScaleAtLeast(float wanted) {
    if (wanted <= 0.f) return 0;
    if (wanted >= kFp16Max) return kFp16MaxBits;
    unsigned short bits = halfBits(wanted);
    if (bitsToFloat(bits) < wanted) bits++;
    return bits;
}

// RPTQ work split: a warp takes a chunk of 256 consecutive plan positions at a time, 8 per lane, so a lane's
// 8 codes are one 32-bit (4-bit) or 24-bit (3-bit) group and a chunk's packed bytes (128 or 96) are one
// coalesced store of the warp. Chunk k of a row goes to warp k mod warps.
constexpr int kChunkPositions = 256;

// Chunks a warp keeps in registers between the min/max and the code pass: width 12288 at 256 threads (FP16)
// or 1024 threads (FP32); more per warp gather twice. Kept under kHeldOctets so the encode fits 64 registers
// (the cap of a 1024-thread block) without spilling. The `_regather` kernels hold none: they gather every chunk
// twice, but in 30 registers and a third of the code, so 8 blocks of 256 threads fit a multiprocessor instead of
// 4 — 16 % faster at 2048 rows of 12288, 6 % at 512, slower at ≤ 128 rows on 1024-thread blocks
// (kernels/bench/NOTES.md, v4 vs v4 regather).
template <typename T> constexpr int kHeldChunks = sizeof(T) == 2 ? 6 : 3;

__host__ __device__ constexpr size_t roundUp16(size_t bytes) { return (bytes + 15) / 16 * 16; }

// Dynamic shared memory of the RPTQ encode kernels: the row (width × elementBytes, 16-byte aligned), cluster
// starts (clusters + 1), per-cluster min and max keys, per-cluster (minimum, reciprocal).
__host__ __device__ constexpr size_t rptqEncodeSmemBytes(int width, int clusters, size_t elementBytes) {
    return roundUp16((size_t) width * elementBytes) + (size_t) (clusters + 1) * 4 + (size_t) clusters * 16;
}

// Dynamic shared memory of the RPTQ decode kernels: the decoded row in plan order (width × elementBytes of
// the output type), cluster starts, per-cluster (scale, minimum).
__host__ __device__ constexpr size_t rptqDecodeSmemBytes(int width, int clusters, size_t elementBytes) {
    return roundUp16((size_t) width * elementBytes) + (size_t) (clusters + 1) * 4 + (size_t) clusters * 8;
}

__device__ __forceinline__ int clusterOf(const int* starts, int clusters, int j) {
    int lo = 0, hi = clusters - 1; // largest c with starts[c] <= j
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (starts[mid] <= j) lo = mid; else hi = mid - 1;
    }
    return lo;
}

// The clusters a chunk's positions [chunkStart, min(chunkStart + 256, width)) touch: first..last. Called by
// whole warps (chunkStart is warp-uniform): up to 32 clusters one ballot per end instead of a binary search.
struct ClusterSpan {
    int first, last;
};
__device__ __forceinline__ ClusterSpan chunkClusters(const int* starts, int clusters, int chunkStart, int width) {
    const int end = min(chunkStart + kChunkPositions, width) - 1;
    if (clusters <= 32) { // starts ascend from starts[0] = 0: the highest lane at or below a position is its cluster
        const int lane = threadIdx.x & 31;
        const int start = lane < clusters ? starts[lane] : 0x7fffffff;
        const unsigned atFirst = __ballot_sync(0xffffffffu, start <= chunkStart);
        const unsigned atLast = __ballot_sync(0xffffffffu, start <= end);
        return {31 - __clz(atFirst), 31 - __clz(atLast)};
    }
    return {clusterOf(starts, clusters, chunkStart), clusterOf(starts, clusters, end)};
}

// Global → shared copy of 16 bytes that needs no register and lets every load of the row be in flight at once.
__device__ __forceinline__ void copyAsync16(void* sharedDst, const void* globalSrc) {
#if __CUDA_ARCH__ >= 800
    unsigned dst = (unsigned) __cvta_generic_to_shared(sharedDst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(globalSrc));
#else
    *reinterpret_cast<uint4*>(sharedDst) = *reinterpret_cast<const uint4*>(globalSrc);
#endif
}
__device__ __forceinline__ void copyAsyncWaitAll() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

// Starts the copy of one row into shared memory; the caller runs copyAsyncWaitAll and a barrier before reading.
template <typename T>
__device__ __forceinline__ void stageRow(const T* __restrict__ in, int width, T* rowValues) {
    constexpr int kPerVector = 16 / sizeof(T);
    if (width % kPerVector == 0 && aligned(in, 16)) {
        for (int i = threadIdx.x * kPerVector; i < width; i += blockDim.x * kPerVector) copyAsync16(rowValues + i, in + i);
    } else {
        for (int i = threadIdx.x; i < width; i += blockDim.x) rowValues[i] = in[i];
    }
}

// The 8 entries of a u16 index table (perm or inversePerm) from position j0 (a multiple of 8); past width, 0.
__device__ __forceinline__ void loadIndices(const unsigned short* __restrict__ table, int j0, int width, bool vector,
                                            unsigned short index[8]) {
    if (vector && j0 + 8 <= width) {
        uint4 v = *reinterpret_cast<const uint4*>(table + j0);
        unsigned w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int k = 0; k < 8; k++) index[k] = (unsigned short) (w[k >> 1] >> (16 * (k & 1)));
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++) index[k] = j0 + k < width ? table[j0 + k] : 0;
    }
}

// Lowest and highest orderKey of all 8 values of an octet, without range checks.
__device__ __forceinline__ void octetKeyRange(const Octet<float>& v, unsigned& lo, unsigned& hi) {
    lo = 0xffffffffu;
    hi = 0;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        const unsigned key = orderKey(v.f[k]);
        lo = min(lo, key);
        hi = max(hi, key);
    }
}

// FP16 pairs: 16-bit order keys of both halves of a word at once (negative halves all bits flipped, the others
// their sign bit), folded with 2-way SIMD min/max; the extremes widened to FP32 keys at the end (FP16 → FP32 is
// exact and monotonic, NaNs stay beyond the infinities, so the keys order the values exactly as orderKey does).
__device__ __forceinline__ unsigned halfPairKeys(unsigned w) {
    return w ^ (((w >> 15) & 0x00010001u) * 0xffffu | 0x80008000u);
}
__device__ __forceinline__ unsigned minU16x2(unsigned a, unsigned b) {
#if __CUDA_ARCH__ >= 900
    unsigned d;
    asm("min.u16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
#else
    return __vminu2(a, b);
#endif
}
__device__ __forceinline__ unsigned maxU16x2(unsigned a, unsigned b) {
#if __CUDA_ARCH__ >= 900
    unsigned d;
    asm("max.u16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
#else
    return __vmaxu2(a, b);
#endif
}
__device__ __forceinline__ unsigned halfKeyToFloatKey(unsigned key16) {
    const unsigned short bits = (key16 & 0x8000u) ? (unsigned short) (key16 & 0x7fffu) : (unsigned short) (~key16 & 0xffffu);
    return orderKey(bitsToFloat(bits));
}
__device__ __forceinline__ void octetKeyRange(const Octet<__half>& v, unsigned& lo, unsigned& hi) {
    unsigned lo2 = halfPairKeys(v.w[0]), hi2 = lo2;
#pragma unroll
    for (int k = 1; k < 4; k++) {
        const unsigned keys = halfPairKeys(v.w[k]);
        lo2 = minU16x2(lo2, keys);
        hi2 = maxU16x2(hi2, keys);
    }
    lo = halfKeyToFloatKey(min(lo2 & 0xffffu, lo2 >> 16));
    hi = halfKeyToFloatKey(max(hi2 & 0xffffu, hi2 >> 16));
}

// The lowest and highest orderKey of a lane's values at plan positions [from, to) among j0..j0+7.
template <typename T>
__device__ __forceinline__ void keyRangeWithin(const Octet<T>& v, int j0, int from, int to, unsigned& lo, unsigned& hi) {
#pragma unroll
    for (int k = 0; k < 8; k++) {
        const int j = j0 + k;
        if (j >= from && j < to) {
            const unsigned key = orderKey(v.get(k));
            lo = min(lo, key);
            hi = max(hi, key);
        }
    }
}

// A warp's min/max keys of cluster c folded into the shared ones: one warp reduction each, one atomic by lane 0.
__device__ __forceinline__ void foldClusterKeys(unsigned lo, unsigned hi, int c, unsigned* minKey, unsigned* maxKey) {
    lo = __reduce_min_sync(0xffffffffu, lo);
    hi = __reduce_max_sync(0xffffffffu, hi);
    if ((threadIdx.x & 31) == 0) {
        atomicMin(&minKey[c], lo);
        atomicMax(&maxKey[c], hi);
    }
}

// Folds a lane's 8 values (plan positions j0..j0+7) into the per-cluster min/max keys: per cluster the chunk
// touches, one warp reduction and one shared atomic by lane 0. Positions ≥ width are left out.
template <typename T>
__device__ __forceinline__ void chunkMinMax(const Octet<T>& v, int j0, int width, ClusterSpan span, const int* starts,
                                            unsigned* minKey, unsigned* maxKey) {
    if (span.first == span.last) { // the common case: one cluster, no range checks but the row's end
        unsigned lo = 0xffffffffu, hi = 0;
        if (j0 + 8 <= width) octetKeyRange(v, lo, hi);
        else keyRangeWithin(v, j0, j0, width, lo, hi);
        foldClusterKeys(lo, hi, span.first, minKey, maxKey);
        return;
    }
    for (int c = span.first; c <= span.last; c++) {
        unsigned lo = 0xffffffffu, hi = 0;
        keyRangeWithin(v, j0, starts[c], starts[c + 1], lo, hi); // starts[c + 1] ≤ width
        foldClusterKeys(lo, hi, c, minKey, maxKey);
    }
}

// RPTQ code of one value, as RptqLinkCodec: rint(clamp((x − minimum) × (1 / scale), 0, levels)); 0 when the
// cluster's scale is 0 (reciprocal 0).
// rint through the FP32 adder instead of the (eighth-rate) conversion unit: y + 1.5 × 2^23 lies in [2^23, 2^24),
// where the ulp is 1, so the sum rounds y to the nearest integer, ties to even (1.5 × 2^23 is even), and its low
// bits hold the code; the caller masks them. Exact for 0 ≤ y ≤ 2^22.
// CLAMP = false (FP16 input, whole chunks) drops the clamp, which cannot change a code there: |x| ≤ 65504, so
// minimum is the cluster's minimum itself (exact in FP16) and x − minimum ≥ 0; (max − minimum) / levels ≤ 131008 / 7
// stays under the FP16 cap, so scale ≥ (max − minimum) / levels up to three FP32 roundings and
// y ≤ levels × (1 + 2^-21), which rounds to ≤ levels. FP32 input can exceed ±65504 (minimum and scale are capped).
template <int BITS, bool CLAMP = true>
__device__ __forceinline__ unsigned rptqCodeBits(float x, float minimum, float reciprocal) {
    constexpr float kLevels = (float) ((1 << BITS) - 1);
    float y = __fmul_rn(__fsub_rn(x, minimum), reciprocal);
    if constexpr (CLAMP) y = fminf(kLevels, fmaxf(0.f, y));
    return __float_as_uint(__fadd_rn(y, 12582912.f));
}
template <int BITS>
__device__ __forceinline__ unsigned rptqCode(float x, float minimum, float reciprocal) {
    if (reciprocal == 0.f) return 0;
    return rptqCodeBits<BITS>(x, minimum, reciprocal) & ((1u << BITS) - 1);
}

// A lane's 8 codes (positions j0..j0+7; 0 past width) as one group, code k at bits [BITS × k, BITS × (k + 1)).
template <typename T, int BITS>
__device__ __forceinline__ unsigned chunkCodes(const Octet<T>& v, int j0, int width, ClusterSpan span, const int* starts,
                                               const float* minimum, const float* reciprocal) {
    unsigned group = 0;
    if (span.first == span.last) { // the common case: the whole chunk in one cluster
        const float m = minimum[span.first], r = reciprocal[span.first];
        if (r == 0.f) return 0; // a constant cluster: every code 0
        if (j0 + 8 <= width) {
#pragma unroll
            for (int k = 0; k < 8; k++)
                group |= (rptqCodeBits<BITS, sizeof(T) != 2>(v.get(k), m, r) & ((1u << BITS) - 1)) << (BITS * k);
        } else {
#pragma unroll
            for (int k = 0; k < 8; k++)
                if (j0 + k < width) group |= rptqCode<BITS>(v.get(k), m, r) << (BITS * k);
        }
    } else {
        int c = span.first;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            const int j = j0 + k;
            if (j < width) {
                while (j >= starts[c + 1]) c++;
                group |= rptqCode<BITS>(v.get(k), minimum[c], reciprocal[c]) << (BITS * k);
            }
        }
    }
    return group;
}

// Stores a warp's packed chunk (BitPacking's dense LSB-first stream): lane l holds the group of positions
// chunkStart + 8l ..; 4-bit groups are whole words, 3-bit groups (24 bits) are re-cut into words by shuffles.
// Bytes at or past rowBytes belong to the next row and are not touched.
template <int BITS>
__device__ __forceinline__ void storeChunk(unsigned group, unsigned char* __restrict__ rowOut, size_t rowBytes,
                                           int chunkStart, bool rowAligned4) {
    const int lane = threadIdx.x & 31;
    unsigned word = group;
    if constexpr (BITS == 3) { // word l = bits [32l, 32l + 32) = the top of group a, then the bottom of group a + 1
        const int a = (4 * lane) / 3, shift = 8 * ((4 * lane) % 3);
        const unsigned g0 = __shfl_sync(0xffffffffu, group, min(a, 31));
        const unsigned g1 = __shfl_sync(0xffffffffu, group, min(a + 1, 31));
        word = g0 >> shift | g1 << (24 - shift);
    }
    if (lane < 8 * BITS) { // words per chunk: 256 × BITS / 32
        const size_t at = (size_t) chunkStart * BITS / 8 + 4 * lane;
        if (rowAligned4 && at + 4 <= rowBytes) {
            *reinterpret_cast<unsigned*>(rowOut + at) = word;
        } else {
            for (int b = 0; b < 4 && at + b < rowBytes; b++) rowOut[at + b] = (unsigned char) (word >> (8 * b));
        }
    }
}

// The mirror of storeChunk, in two steps so a warp can have several chunks' loads in flight: the lane's word
// of the packed chunk (0 past rowBytes), then the lane's group (positions chunkStart + 8l ..) cut from the words.
template <int BITS>
__device__ __forceinline__ unsigned loadChunkWord(const unsigned char* __restrict__ rowIn, size_t rowBytes, int chunkStart,
                                                  bool rowAligned4) {
    const int lane = threadIdx.x & 31;
    unsigned word = 0;
    if (lane < 8 * BITS) {
        const size_t at = (size_t) chunkStart * BITS / 8 + 4 * lane;
        if (rowAligned4 && at + 4 <= rowBytes) {
            word = *reinterpret_cast<const unsigned*>(rowIn + at);
        } else {
            for (int b = 0; b < 4 && at + b < rowBytes; b++) word |= (unsigned) rowIn[at + b] << (8 * b);
        }
    }
    return word;
}
template <int BITS>
__device__ __forceinline__ unsigned chunkGroup(unsigned word) {
    if constexpr (BITS == 4) {
        return word;
    } else { // group l = bits [24l, 24l + 24): from word 3l/4, and the next word when it straddles
        const int lane = threadIdx.x & 31;
        const int a = (3 * lane) / 4, shift = 8 * ((3 * lane) % 4);
        const unsigned w0 = __shfl_sync(0xffffffffu, word, a);
        const unsigned w1 = __shfl_sync(0xffffffffu, word, min(a + 1, 31));
        return (w0 >> shift | (shift != 0 ? w1 << (32 - shift) : 0u)) & 0xffffffu;
    }
}

// Per cluster of this row: the FP16 (scale, minimum) from the min/max keys, written to params and kept in
// shared memory for the code pass. Returns false on every thread when the row holds NaN or ±Inf. Ends with a
// barrier.
template <int BITS>
__device__ __forceinline__ bool clusterParams(const unsigned* minKey, const unsigned* maxKey, int clusters, int row,
                                              unsigned char* __restrict__ params, float* minimum, float* reciprocal) {
    constexpr int kLevels = (1 << BITS) - 1;
    bool finite = true;
    for (int c = threadIdx.x; c < clusters; c += blockDim.x) {
        const unsigned lo = minKey[c], hi = maxKey[c];
        finite &= lo > kKeyNegInf && hi < kKeyPosInf;
        const unsigned short minimumBits = fp16AtMost(keyToFloat(lo));
        const float m = bitsToFloat(minimumBits);
        const unsigned short scaleBits = fp16ScaleAtLeast(__fdiv_rn(__fsub_rn(keyToFloat(hi), m), (float) kLevels));
        const float scale = bitsToFloat(scaleBits);
        minimum[c] = m;
        reciprocal[c] = scale == 0.f ? 0.f : __frcp_rn(scale); // Java: 1f / scale; 0 marks "all codes 0"
        *reinterpret_cast<unsigned*>(params + 4 + ((size_t) row * clusters + c) * 4) = scaleBits | (unsigned) minimumBits << 16;
    }
    return !__syncthreads_or(!finite);
}

// One row per block. The row is staged in shared memory (cp.async), each warp gathers its chunks' values
// through perm (16-byte perm loads, 2- or 4-byte shared-memory gathers) into registers, folds them into the
// cluster min/max, and after one barrier turns the same registers into codes and stores them packed. Rows
// with more chunks per warp than fit in registers (narrow blocks on wide rows) gather twice instead.
template <typename T, int BITS, int kHeld = kHeldChunks<T>>
__device__ void rptqEncode(const T* __restrict__ x, int width, const unsigned short* __restrict__ perm,
                           const int* __restrict__ clusterEnds, int clusters, unsigned fingerprint,
                           unsigned char* __restrict__ params, unsigned char* __restrict__ payload,
                           int* __restrict__ status) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* rowValues = reinterpret_cast<T*>(smem);                                               // (width)
    int* starts = reinterpret_cast<int*>(smem + roundUp16((size_t) width * sizeof(T)));     // (clusters + 1)
    unsigned* minKey = reinterpret_cast<unsigned*>(starts + clusters + 1);                  // (clusters)
    unsigned* maxKey = minKey + clusters;                                                   // (clusters)
    float* minimum = reinterpret_cast<float*>(maxKey + clusters);                           // (clusters)
    float* reciprocal = minimum + clusters;                                                 // (clusters)

    const int row = blockIdx.x;
    if (row == 0 && threadIdx.x == 0) *reinterpret_cast<unsigned*>(params) = fingerprint; // params is 4-aligned
    stageRow(x + (size_t) row * width, width, rowValues);
    for (int c = threadIdx.x; c <= clusters; c += blockDim.x) starts[c] = c == 0 ? 0 : clusterEnds[c - 1];
    for (int c = threadIdx.x; c < clusters; c += blockDim.x) {
        minKey[c] = 0xffffffffu;
        maxKey[c] = 0;
    }
    copyAsyncWaitAll();
    __syncthreads();

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int chunks = (width + kChunkPositions - 1) / kChunkPositions;
    const bool permVector = aligned(perm, 16);
    const size_t rowBytes = ((size_t) width * BITS + 7) / 8;
    unsigned char* out = payload + (size_t) row * rowBytes;
    const bool outAligned = aligned(out, 4);
    auto gather = [&](int chunk) {
        unsigned short index[8];
        loadIndices(perm, chunk * kChunkPositions + 8 * lane, width, permVector, index);
        Octet<T> v;
        v.gather(rowValues, index);
        return v;
    };
    auto span = [&](int chunk) { return chunkClusters(starts, clusters, chunk * kChunkPositions, width); };
    auto raise = [&]() {
        if (threadIdx.x == 0 && status != nullptr) atomicOr(status, 1);
    };

    if (kHeld > 0 && chunks <= kHeld * warps) {
        constexpr int kSlots = kHeld > 0 ? kHeld : 1;
        Octet<T> held[kSlots];
#pragma unroll
        for (int k = 0; k < kHeld; k++)
            if (warp + k * warps < chunks) held[k] = gather(warp + k * warps);
#pragma unroll
        for (int k = 0; k < kHeld; k++) {
            const int chunk = warp + k * warps;
            if (chunk < chunks) chunkMinMax(held[k], chunk * kChunkPositions + 8 * lane, width, span(chunk), starts, minKey, maxKey);
        }
        __syncthreads();
        if (!clusterParams<BITS>(minKey, maxKey, clusters, row, params, minimum, reciprocal)) return raise();
#pragma unroll
        for (int k = 0; k < kHeld; k++) {
            const int chunk = warp + k * warps;
            if (chunk < chunks) {
                const int j0 = chunk * kChunkPositions + 8 * lane;
                storeChunk<BITS>(chunkCodes<T, BITS>(held[k], j0, width, span(chunk), starts, minimum, reciprocal), out,
                                 rowBytes, chunk * kChunkPositions, outAligned);
            }
        }
    } else {
        for (int chunk = warp; chunk < chunks; chunk += warps)
            chunkMinMax(gather(chunk), chunk * kChunkPositions + 8 * lane, width, span(chunk), starts, minKey, maxKey);
        __syncthreads();
        if (!clusterParams<BITS>(minKey, maxKey, clusters, row, params, minimum, reciprocal)) return raise();
        for (int chunk = warp; chunk < chunks; chunk += warps) {
            const int j0 = chunk * kChunkPositions + 8 * lane;
            storeChunk<BITS>(chunkCodes<T, BITS>(gather(chunk), j0, width, span(chunk), starts, minimum, reciprocal), out,
                             rowBytes, chunk * kChunkPositions, outAligned);
        }
    }
}

// A code (< 2^22) as FP32 through the adder: 2^23 + q has q in its significand's low bits; minus 2^23 is exact.
__device__ __forceinline__ float codeToFloat(unsigned q) {
    return __fsub_rn(__uint_as_float(0x4b000000u | q), 8388608.f);
}

// Stores 8 consecutive values (decoded at j0..j0+7) of a T row, vectorised when all 8 lie inside it.
template <typename T>
__device__ __forceinline__ void storeOctet(T* dst, int j0, int width, const float v[8], bool vector) {
    if (vector && j0 + 8 <= width) {
        if constexpr (sizeof(T) == 2) {
            uint4 h;
            __half2* h2 = reinterpret_cast<__half2*>(&h);
#pragma unroll
            for (int k = 0; k < 4; k++) h2[k] = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
            *reinterpret_cast<uint4*>(dst + j0) = h;
        } else {
            reinterpret_cast<float4*>(dst + j0)[0] = make_float4(v[0], v[1], v[2], v[3]);
            reinterpret_cast<float4*>(dst + j0)[1] = make_float4(v[4], v[5], v[6], v[7]);
        }
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++) {
            if (j0 + k < width) {
                if constexpr (sizeof(T) == 2) dst[j0 + k] = __float2half_rn(v[k]); else dst[j0 + k] = v[k];
            }
        }
    }
}

// One row per block, the mirror of the encode: each warp unpacks its chunks (coalesced word loads) and decodes
// them in plan order into shared memory, already in the output type; after a barrier each thread gathers 8
// consecutive channels through inversePerm and stores them with one 16- or 32-byte store.
template <typename T, int BITS>
__device__ void rptqDecode(const unsigned char* __restrict__ params, const unsigned char* __restrict__ payload,
                           int width, const unsigned short* __restrict__ inversePerm,
                           const int* __restrict__ clusterEnds, int clusters, T* __restrict__ out) {
    constexpr unsigned kMask = (1u << BITS) - 1;
    extern __shared__ __align__(16) unsigned char smem[];
    T* planValues = reinterpret_cast<T*>(smem);                                           // (width), plan order
    int* starts = reinterpret_cast<int*>(smem + roundUp16((size_t) width * sizeof(T))); // (clusters + 1)
    float* scale = reinterpret_cast<float*>(starts + clusters + 1);                     // (clusters)
    float* minimum = scale + clusters;                                                  // (clusters)
    const int row = blockIdx.x;
    const size_t rowBytes = ((size_t) width * BITS + 7) / 8;
    const unsigned char* in = payload + (size_t) row * rowBytes;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int chunks = (width + kChunkPositions - 1) / kChunkPositions;
    const bool inAligned = aligned(in, 4);
    const bool planVector = (width & 7) == 0; // planValues is 16-byte aligned
    // the first kHeldWords chunks' payload words are loaded before the params: one memory round trip for both
    constexpr int kHeldWords = 6; // width 12288 at 256 threads
    unsigned words[kHeldWords];
#pragma unroll
    for (int k = 0; k < kHeldWords; k++) {
        const int chunk = warp + k * warps;
        words[k] = chunk < chunks ? loadChunkWord<BITS>(in, rowBytes, chunk * kChunkPositions, inAligned) : 0u;
    }
    for (int c = threadIdx.x; c <= clusters; c += blockDim.x) starts[c] = c == 0 ? 0 : clusterEnds[c - 1];
    for (int c = threadIdx.x; c < clusters; c += blockDim.x) {
        const unsigned char* p = params + 4 + ((size_t) row * clusters + c) * 4;
        scale[c] = bitsToFloat((unsigned short) (p[0] | p[1] << 8));
        minimum[c] = bitsToFloat((unsigned short) (p[2] | p[3] << 8));
    }
    __syncthreads();

    for (int first = warp; first < chunks; first += kHeldWords * warps) {
        if (first != warp) { // rows with more than kHeldWords chunks per warp: the next batch, again all at once
#pragma unroll
            for (int k = 0; k < kHeldWords; k++) {
                const int chunk = first + k * warps;
                words[k] = chunk < chunks ? loadChunkWord<BITS>(in, rowBytes, chunk * kChunkPositions, inAligned) : 0u;
            }
        }
#pragma unroll
        for (int k = 0; k < kHeldWords; k++) {
            const int chunk = first + k * warps;
            if (chunk >= chunks) continue;
            const unsigned group = chunkGroup<BITS>(words[k]);
            const int j0 = chunk * kChunkPositions + 8 * lane;
            const ClusterSpan span = chunkClusters(starts, clusters, chunk * kChunkPositions, width);
            float v[8];
            int c = span.first;
            if (span.first == span.last) { // one cluster: its scale and minimum once
                const float s = scale[c], m = minimum[c];
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] = __fadd_rn(__fmul_rn(codeToFloat(group >> (BITS * e) & kMask), s), m);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    const int j = j0 + e;
                    while (j < width && j >= starts[c + 1]) c++;
                    // Java: q × s + m, two FP32 roundings
                    v[e] = __fadd_rn(__fmul_rn(codeToFloat(group >> (BITS * e) & kMask), scale[c]), minimum[c]);
                }
            }
            storeOctet(planValues, j0, width, v, planVector);
        }
    }
    __syncthreads();

    T* o = out + (size_t) row * width;
    const bool indexVector = aligned(inversePerm, 16);
    if constexpr (sizeof(T) == 4) {
        // FP32: 4 channels a thread, so a warp's 16-byte stores are contiguous (as in the INT8 decode)
        if ((width & 3) == 0 && aligned(o, 16) && aligned(inversePerm, 8)) {
            for (int ch0 = threadIdx.x * 4; ch0 < width; ch0 += blockDim.x * 4) {
                const uint2 pair = *reinterpret_cast<const uint2*>(inversePerm + ch0);
                *reinterpret_cast<float4*>(o + ch0) = make_float4(planValues[pair.x & 0xffffu], planValues[pair.x >> 16],
                                                                  planValues[pair.y & 0xffffu], planValues[pair.y >> 16]);
            }
            return;
        }
    }
    const bool outVector = (width & 7) == 0 && aligned(o, 8 * sizeof(T));
    for (int ch0 = threadIdx.x * 8; ch0 < width; ch0 += blockDim.x * 8) {
        unsigned short index[8];
        loadIndices(inversePerm, ch0, width, indexVector, index);
        if (outVector && ch0 + 8 <= width) {
            Octet<T> v;
            v.gather(planValues, index);
            if constexpr (sizeof(T) == 2) {
                *reinterpret_cast<uint4*>(o + ch0) = make_uint4(v.w[0], v.w[1], v.w[2], v.w[3]);
            } else {
                reinterpret_cast<float4*>(o + ch0)[0] = make_float4(v.f[0], v.f[1], v.f[2], v.f[3]);
                reinterpret_cast<float4*>(o + ch0)[1] = make_float4(v.f[4], v.f[5], v.f[6], v.f[7]);
            }
        } else {
#pragma unroll
            for (int k = 0; k < 8; k++)
                if (ch0 + k < width) o[ch0 + k] = planValues[index[k]];
        }
    }
}

} // namespace link_codecs

// ===================================================================================================
// Entry points. grid = (rows), block = (threads) with threads a multiple of 32, ≤ 1024 (see the top).
// ===================================================================================================

// INT8 per-token encode. x: (rows, width) FP16 or FP32; params: rows × u16 (FP16 scale bits);
// payload: (rows, width) int8; status: null or an int the kernel ORs 1 into for a non-finite row.
// No dynamic shared memory.
extern "C" __global__ void __launch_bounds__(1024) int8_token_encode_f16(const __half* x, int width, unsigned short* params,
                                                 signed char* payload, int* status) {
    link_codecs::int8Encode(x, width, params, payload, status);
}
extern "C" __global__ void __launch_bounds__(1024) int8_token_encode_f32(const float* x, int width, unsigned short* params,
                                                 signed char* payload, int* status) {
    link_codecs::int8Encode(x, width, params, payload, status);
}

// INT8 per-token decode into (rows, width) FP16 (the GPU stage's hidden states) or FP32 (bit-identical to
// Int8TokenCodec.decode). No dynamic shared memory.
extern "C" __global__ void __launch_bounds__(1024) int8_token_decode_f16(const unsigned short* params, const signed char* payload,
                                                 int width, __half* out) {
    link_codecs::int8Decode(params, payload, width, out);
}
extern "C" __global__ void __launch_bounds__(1024) int8_token_decode_f32(const unsigned short* params, const signed char* payload,
                                                 int width, float* out) {
    link_codecs::int8Decode(params, payload, width, out);
}

// RPTQ dynamic-range encode, 4 or 3 bits. x: (rows, width) FP16 or FP32; perm: (width) u16, the channel at
// each plan position (ClusterPlan.permutation(), width ≤ 65536); clusterEnds: (clusters) i32, exclusive end
// plan position of each cluster (ClusterPlan.clusterEnd), ascending, last = width; fingerprint:
// ClusterPlan.fingerprint(), written by block 0; params: 4 + rows × clusters × 4 bytes, 4-byte aligned;
// payload: rows × ceil(bits × width / 8) bytes (16-byte aligned for the fastest stores); status as above.
// Dynamic shared memory: rptq_encode_smem_bytes(width, clusters, sizeof(element)) — above 48 KiB (FP32 rows
// wider than ~11.9k channels) the caller must first raise CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
#define RPTQ_ENCODE(name, T, BITS, HELD)                                                                          \
    extern "C" __global__ void __launch_bounds__(1024) name(const T* x, int width, const unsigned short* perm,         \
                                                            const int* clusterEnds, int clusters, unsigned fingerprint, \
                                                            unsigned char* params, unsigned char* payload, int* status) { \
        link_codecs::rptqEncode<T, BITS, HELD>(x, width, perm, clusterEnds, clusters, fingerprint, params, payload,   \
                                               status);                                                               \
    }
RPTQ_ENCODE(rptq4_encode_f16, __half, 4, link_codecs::kHeldChunks<__half>)
RPTQ_ENCODE(rptq3_encode_f16, __half, 3, link_codecs::kHeldChunks<__half>)
RPTQ_ENCODE(rptq4_encode_f32, float, 4, link_codecs::kHeldChunks<float>)
RPTQ_ENCODE(rptq3_encode_f32, float, 3, link_codecs::kHeldChunks<float>)
// The same bytes from kernels that gather each chunk twice instead of holding it (see kHeldChunks): for FP16 frames
// of many rows on 256-thread blocks. (FP32 rows measured slower this way: their holding kernel runs 512 threads.)
RPTQ_ENCODE(rptq4_encode_f16_regather, __half, 4, 0)
RPTQ_ENCODE(rptq3_encode_f16_regather, __half, 3, 0)
#undef RPTQ_ENCODE

// RPTQ decode into (rows, width) FP16 or FP32 (FP32 bit-identical to RptqLinkCodec.decode), back in channel
// order. inversePerm: (width) u16, the plan position of each channel (ClusterPlan.inversePermutation()).
// The caller checks the params' fingerprint (RptqLinkCodec.checkParams) on the host before launching.
// Dynamic shared memory: rptq_decode_smem_bytes(width, clusters, sizeof(output element)) (24 KiB at width 12288
// into FP16; above 48 KiB — FP32 output wider than ~12.2k channels — raise the attribute as for the encode).
#define RPTQ_DECODE(name, T, BITS)                                                                            \
    extern "C" __global__ void __launch_bounds__(1024) name(const unsigned char* params, const unsigned char* payload, int width,     \
                                    const unsigned short* inversePerm, const int* clusterEnds, int clusters, \
                                    T* out) {                                                                 \
        link_codecs::rptqDecode<T, BITS>(params, payload, width, inversePerm, clusterEnds, clusters, out);                 \
    }
RPTQ_DECODE(rptq4_decode_f16, __half, 4)
RPTQ_DECODE(rptq3_decode_f16, __half, 3)
RPTQ_DECODE(rptq4_decode_f32, float, 4)
RPTQ_DECODE(rptq3_decode_f32, float, 3)
#undef RPTQ_DECODE

// Host-side sizes for the launches above (the Java launcher mirrors these two formulas).
extern "C" __host__ size_t rptq_encode_smem_bytes(int width, int clusters, size_t elementBytes) {
    return link_codecs::rptqEncodeSmemBytes(width, clusters, elementBytes);
}
extern "C" __host__ size_t rptq_decode_smem_bytes(int width, int clusters, size_t elementBytes) {
    return link_codecs::rptqDecodeSmemBytes(width, clusters, elementBytes);
}

// FP16 link codec (Fp16Codec) for FP32 hidden states: payload = the (rows, width) values rounded to FP16, round
// to nearest even (__float2half_rn == Float.floatToFloat16: byte-identical for every finite and infinite value;
// NaN stays NaN, its significand bits may differ); decode widens exactly (Float.float16ToFloat). FP16 hidden
// states need neither kernel (see the top). Launch: any 1-D grid (grid-stride), n = rows × width elements.
extern "C" __global__ void fp16_link_encode_f32(const float* __restrict__ x, long long n, unsigned short* __restrict__ payload) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        payload[i] = link_codecs::halfBits(x[i]);
}
extern "C" __global__ void fp16_link_decode_f32(const unsigned short* __restrict__ payload, long long n, float* __restrict__ out) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        out[i] = link_codecs::bitsToFloat(payload[i]);
}
