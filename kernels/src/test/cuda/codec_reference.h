// Plain C++ ports of the Java link codecs (Int8TokenCodec, RptqLinkCodec DYNAMIC, BitPacking), scalar and
// written from the Java source, not from the CUDA kernels: the harness checks them against the Java goldens
// (on any machine, no GPU needed) and the kernels against the goldens, so a wrong golden reader or a wrong
// reading of the Java code shows up as a disagreement between two independent ports.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace ref {

inline uint32_t floatBits(float v) { uint32_t b; std::memcpy(&b, &v, 4); return b; }
inline float bitsFloat(uint32_t b) { float v; std::memcpy(&v, &b, 4); return v; }

// Float.floatToFloat16: round to nearest, ties to even; overflow to ±Inf; NaN stays NaN.
inline uint16_t toHalf(float v) {
    uint32_t x = floatBits(v);
    uint16_t sign = (uint16_t) ((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00);
    int e = (int) (ax >> 23) - 127;
    if (e < -14) { // FP16 subnormal (or zero): multiples of 2^-24, rint is ties-to-even
        float m = std::nearbyint(bitsFloat(ax) * 16777216.f);
        return sign | (uint16_t) m; // 1024 becomes the smallest normal, as it should
    }
    uint32_t keep = ax >> 13, rest = ax & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (keep & 1))) keep++;
    uint32_t h = keep - (112u << 10);
    if (h >= 0x7c00u) h = 0x7c00u;
    return sign | (uint16_t) h;
}

inline float fromHalf(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 31u, m = h & 1023u;
    if (e == 31) return bitsFloat(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        float v = (float) m / 16777216.f;
        return sign ? -v : v;
    }
    return bitsFloat(sign | ((e + 112u) << 23) | (m << 13));
}

// Math.min / Math.max: NaN wins, -0.0 < +0.0.
inline float jmin(float a, float b) {
    if (a != a) return a;
    if (a == 0.f && b == 0.f) return (floatBits(a) | floatBits(b)) ? bitsFloat(floatBits(a) | floatBits(b)) : a;
    return a <= b ? a : b;
}
inline float jmax(float a, float b) {
    if (a != a) return a;
    if (a == 0.f && b == 0.f) return bitsFloat(floatBits(a) & floatBits(b));
    return a >= b ? a : b;
}

inline uint16_t int8ScaleBits(float absMax) {
    if (absMax == 0.f) return 0;
    float wanted = absMax / 127.f;
    if (wanted >= 65504.f) return 0x7bff;
    uint16_t bits = toHalf(wanted);
    if (fromHalf(bits) < wanted || bits == 0) bits++;
    return bits;
}

// Returns false for a row Java would refuse (non-finite).
inline bool int8Encode(const float* x, int rows, int width, std::vector<uint8_t>& params,
                       std::vector<uint8_t>& payload) {
    params.assign((size_t) rows * 2, 0);
    payload.assign((size_t) rows * width, 0);
    for (int r = 0; r < rows; r++) {
        float absMax = 0.f;
        for (int i = 0; i < width; i++) absMax = jmax(absMax, std::fabs(x[(size_t) r * width + i]));
        if (!std::isfinite(absMax)) return false;
        uint16_t bits = int8ScaleBits(absMax);
        params[2 * r] = (uint8_t) bits;
        params[2 * r + 1] = (uint8_t) (bits >> 8);
        float scale = fromHalf(bits);
        if (scale == 0.f) continue;
        for (int i = 0; i < width; i++) {
            float y = std::fmin(127.f, std::fmax(-127.f, x[(size_t) r * width + i] / scale));
            payload[(size_t) r * width + i] = (uint8_t) (int8_t) std::nearbyint(y);
        }
    }
    return true;
}

inline uint16_t fp16AtMost(float v) {
    float clamped = std::fmax(-65504.f, std::fmin(65504.f, v));
    uint16_t bits = toHalf(clamped);
    if (fromHalf(bits) <= clamped) return bits;
    if (bits == 0) return 0x8001;
    return (bits & 0x8000) ? bits + 1 : bits - 1;
}

inline uint16_t fp16ScaleAtLeast(float wanted) {
    if (wanted <= 0.f) return 0;
    if (wanted >= 65504.f) return 0x7bff;
    uint16_t bits = toHalf(wanted);
    if (fromHalf(bits) < wanted) bits++;
    return bits;
}

// BitPacking.pack: value i at bits [bits × i, bits × (i + 1)), LSB first.
inline void pack(int bits, const uint8_t* codes, int count, uint8_t* dst) {
    size_t bytes = ((size_t) count * bits + 7) / 8;
    std::memset(dst, 0, bytes);
    for (int i = 0; i < count; i++) {
        for (int b = 0; b < bits; b++) {
            if (codes[i] >> b & 1) {
                size_t at = (size_t) i * bits + b;
                dst[at / 8] |= (uint8_t) (1u << (at % 8));
            }
        }
    }
}

inline bool rptqEncode(int bits, const float* x, int rows, int width, const std::vector<int>& perm,
                       const std::vector<int>& clusterEnds, uint32_t fingerprint, std::vector<uint8_t>& params,
                       std::vector<uint8_t>& payload) {
    const int clusters = (int) clusterEnds.size(), levels = (1 << bits) - 1;
    const size_t rowBytes = ((size_t) width * bits + 7) / 8;
    params.assign(4 + (size_t) rows * clusters * 4, 0);
    payload.assign(rowBytes * rows, 0);
    std::memcpy(params.data(), &fingerprint, 4);
    std::vector<float> permuted(width);
    std::vector<uint8_t> codes(width);
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < width; j++) permuted[j] = x[(size_t) r * width + perm[j]];
        for (int c = 0; c < clusters; c++) {
            int from = c == 0 ? 0 : clusterEnds[c - 1], to = clusterEnds[c];
            float lo = INFINITY, hi = -INFINITY;
            for (int j = from; j < to; j++) { lo = jmin(lo, permuted[j]); hi = jmax(hi, permuted[j]); }
            if (!std::isfinite(lo) || !std::isfinite(hi)) return false;
            uint16_t minimumBits = fp16AtMost(lo);
            float minimum = fromHalf(minimumBits);
            uint16_t scaleBits = fp16ScaleAtLeast((hi - minimum) / (float) levels);
            float scale = fromHalf(scaleBits);
            uint8_t* p = &params[4 + ((size_t) r * clusters + c) * 4];
            p[0] = (uint8_t) scaleBits; p[1] = (uint8_t) (scaleBits >> 8);
            p[2] = (uint8_t) minimumBits; p[3] = (uint8_t) (minimumBits >> 8);
            if (scale == 0.f) {
                for (int j = from; j < to; j++) codes[j] = 0;
                continue;
            }
            float reciprocal = 1.f / scale;
            for (int j = from; j < to; j++) {
                float y = std::fmin((float) levels, std::fmax(0.f, (permuted[j] - minimum) * reciprocal));
                codes[j] = (uint8_t) std::nearbyint(y);
            }
        }
        pack(bits, codes.data(), width, &payload[rowBytes * r]);
    }
    return true;
}

} // namespace ref
