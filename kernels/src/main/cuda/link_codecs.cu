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
// still draw enough bandwidth). Dynamic shared memory: see each kernel (only the RPTQ kernels use it).
// Pointers: any alignment works; 16-byte aligned rows (width % 8 == 0 and 16-byte aligned bases) take the
// vectorised path. Everything row-major and contiguous: row r of the activations starts at r × width.
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

template <typename T>
__device__ void int8Encode(const T* __restrict__ x, int width, unsigned short* __restrict__ params,
                           signed char* __restrict__ payload, int* __restrict__ status) {
    __shared__ unsigned scratch[kMaxBlockWarps];
    const int row = blockIdx.x;
    const T* in = x + (size_t) row * width;
    signed char* out = payload + (size_t) row * width;
    const bool vector = (width & 7) == 0 && aligned(in, 8 * sizeof(T)) && aligned(out, 8);

    // absmax as the max of |x|'s bits: exact, and NaN (bits above +Inf's) wins as it does in Java
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

// Dynamic shared memory of the RPTQ encode kernels, laid out by the kernel: the row (width × sizeof(T),
// 16-byte aligned), one code byte per plan position (rounded up to 32), cluster starts, per-warp min/max keys and per-cluster (minimum, reciprocal).
__host__ __device__ constexpr size_t rptqEncodeSmemBytes(int width, int clusters, size_t elementBytes) {
    return ((size_t) width * elementBytes + 15) / 16 * 16 + ((size_t) width + 31) / 32 * 32
           + (size_t) (clusters + 1) * 4 + (size_t) clusters * kMaxBlockWarps * 8 + (size_t) clusters * 8;
}

__device__ __forceinline__ int clusterOf(const int* starts, int clusters, int j) {
    int lo = 0, hi = clusters - 1; // largest c with starts[c] <= j
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (starts[mid] <= j) lo = mid; else hi = mid - 1;
    }
    return lo;
}

template <typename T, int BITS>
__device__ void rptqEncode(const T* __restrict__ x, int width, const unsigned short* __restrict__ perm,
                           const int* __restrict__ clusterEnds, int clusters, unsigned fingerprint,
                           unsigned char* __restrict__ params, unsigned char* __restrict__ payload,
                           int* __restrict__ status) {
    constexpr int kLevels = (1 << BITS) - 1;
    extern __shared__ __align__(16) unsigned char smem[];
    T* rowValues = reinterpret_cast<T*>(smem);
    unsigned char* codes = smem + ((size_t) width * sizeof(T) + 15) / 16 * 16; // (width rounded up to 32)
    int* starts = reinterpret_cast<int*>(codes + ((size_t) width + 31) / 32 * 32);
    unsigned* warpMin = reinterpret_cast<unsigned*>(starts + clusters + 1); // (clusters, 32)
    unsigned* warpMax = warpMin + clusters * kMaxBlockWarps;                 // (clusters, 32)
    float* clusterMinimum = reinterpret_cast<float*>(warpMax + clusters * kMaxBlockWarps);
    float* clusterReciprocal = clusterMinimum + clusters; // 0 marks a zero scale: all codes 0

    const int row = blockIdx.x;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    const T* in = x + (size_t) row * width;
    if (row == 0 && threadIdx.x == 0) *reinterpret_cast<unsigned*>(params) = fingerprint; // params is 4-aligned
    for (int c = threadIdx.x; c <= clusters; c += blockDim.x) starts[c] = c == 0 ? 0 : clusterEnds[c - 1];
    if ((width & 7) == 0 && aligned(in, 16)) {
        constexpr int kPerVector = 16 / sizeof(T);
        for (int i = threadIdx.x * kPerVector; i < width; i += blockDim.x * kPerVector)
            *reinterpret_cast<uint4*>(rowValues + i) = *reinterpret_cast<const uint4*>(in + i);
    } else {
        for (int i = threadIdx.x; i < width; i += blockDim.x) rowValues[i] = in[i];
    }
    __syncthreads();

    // per cluster: strided min/max over its plan positions, one warp reduction, per-warp result to smem
    for (int c = 0; c < clusters; c++) {
        unsigned lo = 0xffffffffu, hi = 0;
        for (int j = starts[c] + threadIdx.x; j < starts[c + 1]; j += blockDim.x) {
            unsigned k = orderKey(toFloat(rowValues[perm[j]]));
            lo = min(lo, k);
            hi = max(hi, k);
        }
        lo = __reduce_min_sync(0xffffffffu, lo);
        hi = __reduce_max_sync(0xffffffffu, hi);
        if ((threadIdx.x & 31) == 0) {
            warpMin[c * kMaxBlockWarps + warp] = lo;
            warpMax[c * kMaxBlockWarps + warp] = hi;
        }
    }
    __syncthreads();
    bool finite = true;
    for (int c = threadIdx.x; c < clusters; c += blockDim.x) {
        unsigned lo = 0xffffffffu, hi = 0;
        for (int w = 0; w < warps; w++) {
            lo = min(lo, warpMin[c * kMaxBlockWarps + w]);
            hi = max(hi, warpMax[c * kMaxBlockWarps + w]);
        }
        finite &= lo > kKeyNegInf && hi < kKeyPosInf;
        unsigned short minimumBits = fp16AtMost(keyToFloat(lo));
        float minimum = bitsToFloat(minimumBits);
        unsigned short scaleBits = fp16ScaleAtLeast(__fdiv_rn(__fsub_rn(keyToFloat(hi), minimum), (float) kLevels));
        float scale = bitsToFloat(scaleBits);
        clusterMinimum[c] = minimum;
        clusterReciprocal[c] = scale == 0.f ? 0.f : __frcp_rn(scale); // Java: 1f / scale
        *reinterpret_cast<unsigned*>(params + 4 + ((size_t) row * clusters + c) * 4) =
                scaleBits | (unsigned) minimumBits << 16;
    }
    if (__syncthreads_or(!finite)) {
        if (threadIdx.x == 0 && status != nullptr) atomicOr(status, 1);
        return;
    }

    // codes, one byte per plan position: consecutive positions on consecutive threads (perm loads coalesce);
    // positions from width up to the next multiple of 32 get code 0 (the packed tail's zero high bits)
    const int padded = (width + 31) / 32 * 32;
    int c = 0;
    for (int j = threadIdx.x; j < padded; j += blockDim.x) {
        unsigned code = 0;
        if (j < width) {
            while (j >= starts[c + 1]) c++;
            float r = clusterReciprocal[c];
            if (r != 0.f) {
                float y = __fmul_rn(__fsub_rn(toFloat(rowValues[perm[j]]), clusterMinimum[c]), r);
                code = (unsigned) __float2int_rn(fminf((float) kLevels, fmaxf(0.f, y)));
            }
        }
        codes[j] = (unsigned char) code;
    }
    __syncthreads();

    // pack 32 codes per thread step: 16 bytes (4 bits) or 12 bytes (3 bits)
    constexpr int kUnitBytes = 4 * BITS;
    const size_t rowBytes = ((size_t) width * BITS + 7) / 8;
    unsigned char* out = payload + (size_t) row * rowBytes;
    const int units = padded / 32;
    for (int u = threadIdx.x; u < units; u += blockDim.x) {
        const int count = min(32, width - u * 32);
        const uint4* unitCodes = reinterpret_cast<const uint4*>(codes + u * 32);
        uint4 lo = unitCodes[0], hi = unitCodes[1];
        unsigned bytes4[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w}; // 4 codes each
        unsigned group[4]; // 8 codes each: 32 bits (4-bit) or 24 bits (3-bit)
#pragma unroll
        for (int k = 0; k < 4; k++) {
            unsigned a = bytes4[2 * k], b = bytes4[2 * k + 1];
            unsigned g = 0;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                g |= ((a >> (8 * i)) & 0xffu) << (BITS * i);
                g |= ((b >> (8 * i)) & 0xffu) << (BITS * (i + 4));
            }
            group[k] = g;
        }
        unsigned words[4];
        if constexpr (BITS == 4) {
            words[0] = group[0]; words[1] = group[1]; words[2] = group[2]; words[3] = group[3];
        } else {
            words[0] = group[0] | group[1] << 24;
            words[1] = group[1] >> 8 | group[2] << 16;
            words[2] = group[2] >> 16 | group[3] << 8;
            words[3] = 0;
        }
        unsigned char* dst = out + (size_t) u * kUnitBytes;
        if (count == 32 && BITS == 4 && aligned(dst, 16)) {
            *reinterpret_cast<uint4*>(dst) = make_uint4(words[0], words[1], words[2], words[3]);
        } else if (count == 32 && aligned(dst, 4)) {
#pragma unroll
            for (int w = 0; w < BITS; w++) reinterpret_cast<unsigned*>(dst)[w] = words[w];
        } else {
            const int bytes = (count * BITS + 7) / 8; // unused high bits of the last byte are zero
            for (int b = 0; b < bytes; b++) dst[b] = (unsigned char) (words[b >> 2] >> (8 * (b & 3)));
        }
    }
}

// Code at plan position j of a packed row.
template <int BITS>
__device__ __forceinline__ unsigned unpackCode(const unsigned char* packed, int j) {
    if constexpr (BITS == 4) {
        return (packed[j >> 1] >> ((j & 1) * 4)) & 15u;
    } else {
        int bit = 3 * j;
        unsigned two = packed[bit >> 3] | (unsigned) packed[(bit >> 3) + 1] << 8; // the row buffer has a spare byte
        return (two >> (bit & 7)) & 7u;
    }
}

// Dynamic shared memory of the RPTQ decode kernels.
__host__ __device__ constexpr size_t rptqDecodeSmemBytes(int width, int clusters, int bits) {
    return ((size_t) width * bits + 7) / 8 + 1 + 15 + (size_t) (clusters + 1) * 4 + (size_t) clusters * 8;
}

template <typename T, int BITS>
__device__ void rptqDecode(const unsigned char* __restrict__ params, const unsigned char* __restrict__ payload,
                           int width, const unsigned short* __restrict__ inversePerm,
                           const int* __restrict__ clusterEnds, int clusters, T* __restrict__ out) {
    extern __shared__ __align__(16) unsigned char smem[];
    const size_t rowBytes = ((size_t) width * BITS + 7) / 8;
    unsigned char* packed = smem;
    int* starts = reinterpret_cast<int*>(smem + (rowBytes + 1 + 15) / 16 * 16);
    float* scale = reinterpret_cast<float*>(starts + clusters + 1);
    float* minimum = scale + clusters;
    const int row = blockIdx.x;
    const unsigned char* in = payload + (size_t) row * rowBytes;
    for (int b = threadIdx.x; b <= (int) rowBytes; b += blockDim.x) packed[b] = b < (int) rowBytes ? in[b] : 0;
    for (int c = threadIdx.x; c <= clusters; c += blockDim.x) starts[c] = c == 0 ? 0 : clusterEnds[c - 1];
    for (int c = threadIdx.x; c < clusters; c += blockDim.x) {
        const unsigned char* p = params + 4 + ((size_t) row * clusters + c) * 4;
        scale[c] = bitsToFloat((unsigned short) (p[0] | p[1] << 8));
        minimum[c] = bitsToFloat((unsigned short) (p[2] | p[3] << 8));
    }
    __syncthreads();
    T* o = out + (size_t) row * width;
    for (int ch = threadIdx.x; ch < width; ch += blockDim.x) {
        int j = inversePerm[ch];
        int c = clusterOf(starts, clusters, j);
        float v = __fadd_rn(__fmul_rn((float) unpackCode<BITS>(packed, j), scale[c]), minimum[c]); // Java: q × s + m
        if constexpr (sizeof(T) == 2) o[ch] = __float2half_rn(v); else o[ch] = v;
    }
}

} // namespace link_codecs

// ===================================================================================================
// Entry points. grid = (rows), block = (threads) with threads a multiple of 32, ≤ 1024 (see the top).
// ===================================================================================================

// INT8 per-token encode. x: (rows, width) FP16 or FP32; params: rows × u16 (FP16 scale bits);
// payload: (rows, width) int8; status: null or an int the kernel ORs 1 into for a non-finite row.
// No dynamic shared memory.
extern "C" __global__ void int8_token_encode_f16(const __half* x, int width, unsigned short* params,
                                                 signed char* payload, int* status) {
    link_codecs::int8Encode(x, width, params, payload, status);
}
extern "C" __global__ void int8_token_encode_f32(const float* x, int width, unsigned short* params,
                                                 signed char* payload, int* status) {
    link_codecs::int8Encode(x, width, params, payload, status);
}

// INT8 per-token decode into (rows, width) FP16 (the GPU stage's hidden states) or FP32 (bit-identical to
// Int8TokenCodec.decode). No dynamic shared memory.
extern "C" __global__ void int8_token_decode_f16(const unsigned short* params, const signed char* payload,
                                                 int width, __half* out) {
    link_codecs::int8Decode(params, payload, width, out);
}
extern "C" __global__ void int8_token_decode_f32(const unsigned short* params, const signed char* payload,
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
extern "C" __global__ void rptq4_encode_f16(const __half* x, int width, const unsigned short* perm,
                                            const int* clusterEnds, int clusters, unsigned fingerprint,
                                            unsigned char* params, unsigned char* payload, int* status) {
    link_codecs::rptqEncode<__half, 4>(x, width, perm, clusterEnds, clusters, fingerprint, params, payload, status);
}
extern "C" __global__ void rptq3_encode_f16(const __half* x, int width, const unsigned short* perm,
                                            const int* clusterEnds, int clusters, unsigned fingerprint,
                                            unsigned char* params, unsigned char* payload, int* status) {
    link_codecs::rptqEncode<__half, 3>(x, width, perm, clusterEnds, clusters, fingerprint, params, payload, status);
}
extern "C" __global__ void rptq4_encode_f32(const float* x, int width, const unsigned short* perm,
                                            const int* clusterEnds, int clusters, unsigned fingerprint,
                                            unsigned char* params, unsigned char* payload, int* status) {
    link_codecs::rptqEncode<float, 4>(x, width, perm, clusterEnds, clusters, fingerprint, params, payload, status);
}
extern "C" __global__ void rptq3_encode_f32(const float* x, int width, const unsigned short* perm,
                                            const int* clusterEnds, int clusters, unsigned fingerprint,
                                            unsigned char* params, unsigned char* payload, int* status) {
    link_codecs::rptqEncode<float, 3>(x, width, perm, clusterEnds, clusters, fingerprint, params, payload, status);
}

// RPTQ decode into (rows, width) FP16 or FP32 (FP32 bit-identical to RptqLinkCodec.decode), back in channel
// order. inversePerm: (width) u16, the plan position of each channel (ClusterPlan.inversePermutation()).
// The caller checks the params' fingerprint (RptqLinkCodec.checkParams) on the host before launching.
// Dynamic shared memory: rptq_decode_smem_bytes(width, clusters, bits) (6.2 KiB at width 12288, 4 bits).
#define RPTQ_DECODE(name, T, BITS)                                                                            \
    extern "C" __global__ void name(const unsigned char* params, const unsigned char* payload, int width,     \
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
extern "C" __host__ size_t rptq_decode_smem_bytes(int width, int clusters, int bits) {
    return link_codecs::rptqDecodeSmemBytes(width, clusters, bits);
}
