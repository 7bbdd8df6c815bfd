// Test and benchmark harness for kernels/src/main/cuda/{attention,link_codecs}.cu (built by run.sh beside
// this file; no Maven, no Java). Modes:
//   kernels_test cpu    host ports of the Java codecs against the Java goldens (no GPU needed)
//   kernels_test check  the kernels: codecs byte for byte against the goldens, attention against a float64
//                       CPU reference (decode + prefill, several sequences of different lengths, hd 64/128)
//   kernels_test bench  codec GB/s next to cudaMemcpy D2D; attention decode/prefill at OPT-175B shapes
//   kernels_test codecs check + bench of the link codecs only (codecs-check: the check alone)
// Every check validates before anything is timed (llm.c's habit); exit code 1 on any failure.
#include "../../main/cuda/attention.cu"
#include "../../main/cuda/link_codecs.cu"
#include "codec_reference.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cuda_check.h"
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

static int failures = 0;
static void expect(bool ok, const std::string& what) {
    if (!ok) {
        failures++;
        std::printf("  FAIL %s\n", what.c_str());
    }
}

template <typename T>
struct DeviceBuffer {
    T* p = nullptr;
    size_t n = 0;
    explicit DeviceBuffer(size_t count = 0) { resize(count); }
    ~DeviceBuffer() { if (p) cudaFree(p); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    void resize(size_t count) {
        if (p) CUDA_CHECK(cudaFree(p));
        p = nullptr;
        n = count;
        if (count) CUDA_CHECK(cudaMalloc(&p, count * sizeof(T)));
    }
    void upload(const std::vector<T>& v) { CUDA_CHECK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice)); }
    std::vector<T> download() const {
        std::vector<T> v(n);
        CUDA_CHECK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
        return v;
    }
    void poison(int byte = 0xa5) { CUDA_CHECK(cudaMemset(p, byte, n * sizeof(T))); }
};

// ------------------------------------------------------------------------------------------------
// Golden frames (kernels/src/test/golden/GoldenFrames.java documents the layout)
// ------------------------------------------------------------------------------------------------
struct Golden {
    std::string name;
    uint32_t codec = 0, rows = 0, width = 0, clusters = 0, inputKind = 0, fingerprint = 0;
    std::vector<float> input; // widened when the file holds FP16
    std::vector<uint16_t> inputHalf;
    std::vector<int> perm, clusterEnds;
    std::vector<uint8_t> params, payload;
    std::vector<float> decoded;
};

static bool readGolden(const std::string& path, Golden& g) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t at = 0;
    auto u32 = [&]() { uint32_t v; std::memcpy(&v, &bytes[at], 4); at += 4; return v; };
    if (u32() != ('B' | 'R' << 8 | 'G' << 16 | 'F' << 24) || u32() != 1) return false;
    g.codec = u32(); g.rows = u32(); g.width = u32(); g.clusters = u32(); g.inputKind = u32(); g.fingerprint = u32();
    size_t n = (size_t) g.rows * g.width;
    g.input.resize(n);
    if (g.inputKind == 0) {
        g.inputHalf.resize(n);
        std::memcpy(g.inputHalf.data(), &bytes[at], 2 * n); at += 2 * n;
        for (size_t i = 0; i < n; i++) g.input[i] = ref::fromHalf(g.inputHalf[i]);
    } else {
        std::memcpy(g.input.data(), &bytes[at], 4 * n); at += 4 * n;
    }
    if (g.codec != 2) {
        g.perm.resize(g.width);
        for (auto& p : g.perm) p = (int) u32();
        g.clusterEnds.resize(g.clusters);
        for (auto& e : g.clusterEnds) e = (int) u32();
    }
    g.params.resize(u32()); std::memcpy(g.params.data(), &bytes[at], g.params.size()); at += g.params.size();
    g.payload.resize(u32()); std::memcpy(g.payload.data(), &bytes[at], g.payload.size()); at += g.payload.size();
    g.decoded.resize(n); std::memcpy(g.decoded.data(), &bytes[at], 4 * n); at += 4 * n;
    return at == bytes.size();
}

static const char* kGoldenNames[] = {"int8_w768_f16", "int4_w768_f16", "int3_w768_f16", "int8_w12288_f16",
                                     "int4_w12288_f16", "int3_w12288_f16", "int8_w768_f32", "int4_w768_f32",
                                     "int3_w768_f32", "int8_w100_f32", "int4_w100_f32", "int3_w100_f32"};

static std::vector<Golden> loadGoldens(const std::string& dir) {
    std::vector<Golden> all;
    for (const char* name : kGoldenNames) {
        Golden g;
        g.name = name;
        if (!readGolden(dir + "/" + name + ".bin", g)) {
            std::printf("cannot read golden %s/%s.bin\n", dir.c_str(), name);
            std::exit(2);
        }
        all.push_back(std::move(g));
    }
    return all;
}

static size_t firstDifference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    if (a.size() != b.size()) return 0;
    for (size_t i = 0; i < a.size(); i++) if (a[i] != b[i]) return i;
    return SIZE_MAX;
}

static void checkHostReference(const std::vector<Golden>& goldens) {
    std::printf("== host ports of the Java codecs vs Java goldens\n");
    for (const Golden& g : goldens) {
        std::vector<uint8_t> params, payload;
        bool ok = g.codec == 2 ? ref::int8Encode(g.input.data(), g.rows, g.width, params, payload)
                               : ref::rptqEncode(g.codec == 3 ? 4 : 3, g.input.data(), g.rows, g.width, g.perm,
                                                 g.clusterEnds, g.fingerprint, params, payload);
        size_t dp = firstDifference(params, g.params), dy = firstDifference(payload, g.payload);
        std::printf("  %-16s params %s payload %s\n", g.name.c_str(), dp == SIZE_MAX ? "identical" : "DIFFER",
                    dy == SIZE_MAX ? "identical" : "DIFFER");
        expect(ok && dp == SIZE_MAX && dy == SIZE_MAX, "host reference " + g.name);
    }
}

// ------------------------------------------------------------------------------------------------
// Codec kernels vs goldens
// ------------------------------------------------------------------------------------------------
static std::vector<uint16_t> toU16(const std::vector<int>& v) { return std::vector<uint16_t>(v.begin(), v.end()); }

// The encode kernels the checks run, by input index: FP16, FP32, then the RPTQ ones that gather twice.
static const char* kEncodeNames[] = {"f16", "f32", "f16_regather"};

static void checkCodecKernels(const std::vector<Golden>& goldens) {
    std::printf("== codec kernels vs Java goldens (byte-identical params + payload; FP32 decode bit-identical)\n");
    for (const Golden& g : goldens) {
        const int rows = g.rows, width = g.width, clusters = g.clusters;
        const int bits = g.codec == 2 ? 8 : g.codec == 3 ? 4 : 3;
        DeviceBuffer<float> x32((size_t) rows * width);
        x32.upload(g.input);
        DeviceBuffer<__half> x16((size_t) rows * width);
        if (g.inputKind == 0) {
            CUDA_CHECK(cudaMemcpy(x16.p, g.inputHalf.data(), g.inputHalf.size() * 2, cudaMemcpyHostToDevice));
        }
        DeviceBuffer<uint8_t> params(g.params.size()), payload(g.payload.size());
        DeviceBuffer<int> status(1);
        DeviceBuffer<uint16_t> perm(width), inverse(width);
        DeviceBuffer<int> ends(std::max(1, clusters));
        if (bits != 8) {
            std::vector<int> inv(width);
            for (int j = 0; j < width; j++) inv[g.perm[j]] = j;
            perm.upload(toU16(g.perm));
            inverse.upload(toU16(inv));
            ends.upload(g.clusterEnds);
        }
        // 0: FP16 kernels (FP16 goldens only), 1: FP32 kernels, 2: the FP16 RPTQ kernels that gather twice
        for (int input = 0; input < 3; input++) {
            if ((input != 1 && g.inputKind != 0) || (input == 2 && bits == 8)) continue;
            for (int threads : {96, 256, 1024}) {
                params.poison();
                payload.poison();
                status.poison(0);
                if (bits == 8) {
                    if (input == 0)
                        int8_token_encode_f16<<<rows, threads>>>(x16.p, width, (unsigned short*) params.p,
                                                                 (signed char*) payload.p, status.p);
                    else
                        int8_token_encode_f32<<<rows, threads>>>(x32.p, width, (unsigned short*) params.p,
                                                                 (signed char*) payload.p, status.p);
                } else {
                    size_t smem = rptq_encode_smem_bytes(width, clusters, input == 0 ? 2 : 4);
                    auto args = [&](auto kernel, auto* x) {
                        // only above the default 48 KiB: the attribute is a cap, a smaller one breaks later launches
                        if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) smem));
                        kernel<<<rows, threads, smem>>>(x, width, perm.p, ends.p, clusters, g.fingerprint, params.p,
                                                        payload.p, status.p);
                    };
                    if (input == 0) args(bits == 4 ? rptq4_encode_f16 : rptq3_encode_f16, x16.p);
                    else if (input == 2) args(bits == 4 ? rptq4_encode_f16_regather : rptq3_encode_f16_regather, x16.p);
                    else args(bits == 4 ? rptq4_encode_f32 : rptq3_encode_f32, x32.p);
                }
                LAUNCH_CHECK();
                CUDA_CHECK(cudaDeviceSynchronize());
                size_t dp = firstDifference(params.download(), g.params);
                size_t dy = firstDifference(payload.download(), g.payload);
                int st = status.download()[0];
                if (threads == 256 || dp != SIZE_MAX || dy != SIZE_MAX || st != 0) {
                    std::printf("  %-16s encode_%s %4d threads: params %s payload %s status %d\n", g.name.c_str(),
                                kEncodeNames[input], threads,
                                dp == SIZE_MAX ? "identical" : ("DIFFER@" + std::to_string(dp)).c_str(),
                                dy == SIZE_MAX ? "identical" : ("DIFFER@" + std::to_string(dy)).c_str(), st);
                }
                expect(dp == SIZE_MAX && dy == SIZE_MAX && st == 0, "encode " + g.name);
            }
        }
        // decode the golden frame itself
        params.upload(g.params);
        payload.upload(g.payload);
        DeviceBuffer<float> out32((size_t) rows * width);
        DeviceBuffer<__half> out16((size_t) rows * width);
        out32.poison();
        out16.poison();
        for (int threads : {96, 256, 1024}) {
            out32.poison();
            out16.poison();
            if (bits == 8) {
                int8_token_decode_f32<<<rows, threads>>>((unsigned short*) params.p, (signed char*) payload.p, width, out32.p);
                int8_token_decode_f16<<<rows, threads>>>((unsigned short*) params.p, (signed char*) payload.p, width, out16.p);
            } else {
                auto decode = [&](auto kernel, auto* o) {
                    size_t smem = rptq_decode_smem_bytes(width, clusters, sizeof(*o));
                    if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) smem));
                    kernel<<<rows, threads, smem>>>(params.p, payload.p, width, inverse.p, ends.p, clusters, o);
                };
                decode(bits == 4 ? rptq4_decode_f32 : rptq3_decode_f32, out32.p);
                decode(bits == 4 ? rptq4_decode_f16 : rptq3_decode_f16, out16.p);
            }
            LAUNCH_CHECK();
            CUDA_CHECK(cudaDeviceSynchronize());
            std::vector<float> d32 = out32.download();
            std::vector<__half> d16 = out16.download();
            size_t bad32 = 0, bad16 = 0;
            for (size_t i = 0; i < d32.size(); i++) {
                bad32 += ref::floatBits(d32[i]) != ref::floatBits(g.decoded[i]);
                bad16 += __half_raw(d16[i]).x != ref::toHalf(g.decoded[i]);
            }
            if (threads == 256 || bad32 != 0 || bad16 != 0)
                std::printf("  %-16s decode %4d threads: FP32 %zu/%zu bits differ, FP16 %zu differ from the Java values rounded\n",
                            g.name.c_str(), threads, bad32, d32.size(), bad16);
            expect(bad32 == 0 && bad16 == 0, "decode " + g.name);
        }
    }
    // a non-finite row must raise the status word
    {
        const int width = 768;
        std::vector<float> x(2 * width, 1.f);
        x[width + 5] = NAN;
        DeviceBuffer<float> dx(x.size());
        dx.upload(x);
        DeviceBuffer<uint8_t> params(4 + 2 * 8 * 4), payload(2 * width);
        DeviceBuffer<int> status(1);
        status.poison(0);
        int8_token_encode_f32<<<2, 256>>>(dx.p, width, (unsigned short*) params.p, (signed char*) payload.p, status.p);
        CUDA_CHECK(cudaDeviceSynchronize());
        int st8 = status.download()[0];
        std::vector<int> ends = {96, 200, 300, 400, 500, 600, 700, 768};
        std::vector<int> permI(width);
        for (int j = 0; j < width; j++) permI[j] = j;
        DeviceBuffer<uint16_t> perm(width);
        perm.upload(toU16(permI));
        DeviceBuffer<int> dEnds(8);
        dEnds.upload(ends);
        status.poison(0);
        rptq4_encode_f32<<<2, 256, rptq_encode_smem_bytes(width, 8, 4)>>>(dx.p, width, perm.p, dEnds.p, 8, 0, params.p,
                                                                          payload.p, status.p);
        LAUNCH_CHECK();
        CUDA_CHECK(cudaDeviceSynchronize());
        int st4 = status.download()[0];
        std::printf("  NaN row: int8 status %d, int4 status %d (1 expected)\n", st8, st4);
        expect(st8 == 1 && st4 == 1, "non-finite status");
    }
}

// Shapes the goldens do not cover, against the host port (itself checked against the goldens): widths that
// are not a multiple of 8 or 256, one cluster or many, cluster ends inside a warp's chunk, inputs that start
// off a 16-byte boundary (the unvectorised paths), FP32 and FP16 kernels, decode back to channel order.
static void checkCodecShapes() {
    std::printf("== codec kernels vs the host port on extra shapes (encode bytes; decode FP32 bits)\n");
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.f, 1.f);
    struct Shape { int width, clusters, rows, offset, threads; };
    for (Shape sh : {Shape{40, 1, 3, 0, 32}, Shape{1000, 3, 5, 0, 128}, Shape{1001, 5, 4, 1, 256}, Shape{4104, 8, 6, 0, 96},
                     Shape{4104, 17, 6, 3, 1024}, Shape{12288, 8, 3, 0, 256}, Shape{12288, 8, 3, 0, 64},
                     Shape{12288, 32, 3, 0, 256}, Shape{4104, 40, 4, 0, 256}}) { // 32: the most one ballot finds; 40: past it
        const int width = sh.width, rows = sh.rows, clusters = sh.clusters;
        std::vector<float> x((size_t) rows * width);
        for (size_t i = 0; i < x.size(); i++) x[i] = normal(rng) * (i % 97 == 0 ? 40.f : 1.f);
        std::fill(x.begin() + width, x.begin() + 2 * width, 0.f); // an all-zero row
        std::vector<int> perm(width), ends(clusters), inv(width);
        for (int j = 0; j < width; j++) perm[j] = j;
        std::shuffle(perm.begin(), perm.end(), rng);
        for (int j = 0; j < width; j++) inv[perm[j]] = j;
        for (int c = 0; c < clusters; c++) ends[c] = (int) ((long) (c + 1) * width / clusters) - (c + 1 < clusters ? 7 * c % 5 : 0);
        // FP16 values widened (exact), so one host result serves both kernels
        std::vector<uint16_t> xh(x.size());
        for (size_t i = 0; i < x.size(); i++) { xh[i] = ref::toHalf(x[i]); x[i] = ref::fromHalf(xh[i]); }
        DeviceBuffer<float> x32(x.size() + 8);
        DeviceBuffer<uint16_t> x16(x.size() + 8);
        CUDA_CHECK(cudaMemcpy(x32.p + sh.offset, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(x16.p + sh.offset, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice));
        DeviceBuffer<uint16_t> dPerm(width), dInv(width);
        dPerm.upload(toU16(perm));
        dInv.upload(toU16(inv));
        DeviceBuffer<int> dEnds(clusters), status(1);
        dEnds.upload(ends);
        for (int bits : {8, 4, 3}) {
            std::vector<uint8_t> wantParams, wantPayload;
            if (bits == 8) ref::int8Encode(x.data(), rows, width, wantParams, wantPayload);
            else ref::rptqEncode(bits, x.data(), rows, width, perm, ends, 99, wantParams, wantPayload);
            DeviceBuffer<uint8_t> params(wantParams.size()), payload(wantPayload.size());
            for (int input = 0; input < (bits == 8 ? 2 : 3); input++) { // 2: FP16, gathering twice
                params.poison();
                payload.poison();
                status.poison(0);
                const __half* h = (const __half*) x16.p + sh.offset;
                const float* f = x32.p + sh.offset;
                if (bits == 8) {
                    if (input == 0) int8_token_encode_f16<<<rows, sh.threads>>>(h, width, (unsigned short*) params.p, (signed char*) payload.p, status.p);
                    else int8_token_encode_f32<<<rows, sh.threads>>>(f, width, (unsigned short*) params.p, (signed char*) payload.p, status.p);
                } else {
                    auto run = [&](auto kernel, auto* in, size_t elementBytes) {
                        size_t smem = rptq_encode_smem_bytes(width, clusters, elementBytes);
                        if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) smem));
                        kernel<<<rows, sh.threads, smem>>>(in, width, dPerm.p, dEnds.p, clusters, 99, params.p, payload.p, status.p);
                    };
                    if (input == 0) run(bits == 4 ? rptq4_encode_f16 : rptq3_encode_f16, h, 2);
                    else if (input == 2) run(bits == 4 ? rptq4_encode_f16_regather : rptq3_encode_f16_regather, h, 2);
                    else run(bits == 4 ? rptq4_encode_f32 : rptq3_encode_f32, f, 4);
                }
                LAUNCH_CHECK();
                CUDA_CHECK(cudaDeviceSynchronize());
                size_t dp = firstDifference(params.download(), wantParams), dy = firstDifference(payload.download(), wantPayload);
                int st = status.download()[0];
                bool ok = dp == SIZE_MAX && dy == SIZE_MAX && st == 0;
                if (!ok) std::printf("  width %d clusters %d offset %d threads %d int%d encode_%s: params %zd payload %zd status %d\n",
                                     width, clusters, sh.offset, sh.threads, bits, kEncodeNames[input],
                                     dp == SIZE_MAX ? (ssize_t) -1 : (ssize_t) dp, dy == SIZE_MAX ? (ssize_t) -1 : (ssize_t) dy, st);
                expect(ok, "encode shape width " + std::to_string(width) + " int" + std::to_string(bits));
            }
            if (bits == 8) continue;
            // decode the host frame: value at plan position j = q × s + m of its cluster, back at channel perm[j]
            params.upload(wantParams);
            payload.upload(wantPayload);
            const size_t rowBytes = ((size_t) width * bits + 7) / 8;
            std::vector<float> want(x.size());
            for (int r = 0; r < rows; r++)
                for (int c = 0, j = 0; c < clusters; c++) {
                    const uint8_t* p = &wantParams[4 + ((size_t) r * clusters + c) * 4];
                    float scale = ref::fromHalf((uint16_t) (p[0] | p[1] << 8)), minimum = ref::fromHalf((uint16_t) (p[2] | p[3] << 8));
                    for (; j < ends[c]; j++) {
                        size_t bit = (size_t) j * bits;
                        const uint8_t* row = &wantPayload[rowBytes * r];
                        unsigned two = row[bit / 8] | (bit / 8 + 1 < rowBytes ? row[bit / 8 + 1] << 8 : 0);
                        float q = (float) ((two >> (bit % 8)) & ((1u << bits) - 1));
                        volatile float product = q * scale; // two roundings, as Java
                        want[(size_t) r * width + perm[j]] = product + minimum;
                    }
                }
            DeviceBuffer<float> out32(x.size());
            out32.poison();
            size_t smem = rptq_decode_smem_bytes(width, clusters, 4);
            auto kernel = bits == 4 ? rptq4_decode_f32 : rptq3_decode_f32;
            if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) smem));
            kernel<<<rows, sh.threads, smem>>>(params.p, payload.p, width, dInv.p, dEnds.p, clusters, out32.p);
            LAUNCH_CHECK();
            CUDA_CHECK(cudaDeviceSynchronize());
            std::vector<float> got = out32.download();
            size_t bad = 0;
            for (size_t i = 0; i < got.size(); i++) bad += ref::floatBits(got[i]) != ref::floatBits(want[i]);
            if (bad) std::printf("  width %d clusters %d threads %d int%d decode: %zu values differ\n", width, clusters, sh.threads, bits, bad);
            expect(bad == 0, "decode shape width " + std::to_string(width) + " int" + std::to_string(bits));
        }
        std::printf("  width %5d, %2d clusters, input offset %d, %4d threads: int8/int4/int3 checked\n", width, clusters,
                    sh.offset, sh.threads);
    }
}

// ------------------------------------------------------------------------------------------------
// Attention vs a float64 CPU reference
// ------------------------------------------------------------------------------------------------
struct SeqShape { int past, fresh; };

// Deterministic pseudo-random FP16 (hash of the index, roughly N(0, 1) by a sum of uniforms) for benchmark
// problems too large to draw on the host.
__global__ void fillRandomHalf(__half* p, size_t n, uint32_t seed, float scale) {
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t) i * 0x9e3779b9u ^ seed * 0x85ebca6bu ^ (uint32_t) (i >> 32);
        float sum = 0.f;
        for (int k = 0; k < 4; k++) {
            h ^= h >> 16; h *= 0x7feb352du; h ^= h >> 15; h *= 0x846ca68bu; h ^= h >> 16;
            sum += (h & 0xffffff) * (1.f / 16777216.f);
        }
        p[i] = __float2half_rn((sum - 2.f) * 1.7320508f * scale);
    }
}
static void fillRandom(__half* p, size_t n, uint32_t seed, float scale = 1.f) {
    fillRandomHalf<<<1024, 256>>>(p, n, seed, scale);
    LAUNCH_CHECK();
}

static float halfToFloat(__half h) { return ref::fromHalf(__half_raw(h).x); }
static __half floatToHalf(float v) { __half_raw r; r.x = ref::toHalf(v); return __half(r); }

// Splits for the decode kernel, as documented next to it: chosen for the context's bucket, as the runtime does
// (AttentionKernels.decodeSplit), so the longest sequence may leave trailing splits idle.
static int decodeContextBucket(int maxContext) {
    if (maxContext <= 128) return 128;
    long long power = 1;
    while (power < maxContext) power <<= 1;
    long long bucket = maxContext <= power / 4 * 3 ? power / 4 * 3 : power;
    long long capped = (maxContext + 4095LL) / 4096 * 4096;
    return (int) std::min(bucket, capped);
}

static void decodeSplits(int numSeqs, int heads, int maxContext, int sms, int& keysPerSplit, int& maxSplits) {
    int bucket = decodeContextBucket(maxContext);
    int splits = (4 * sms + numSeqs * heads - 1) / (numSeqs * heads);
    splits = std::max(1, std::min(splits, (bucket + 127) / 128));
    keysPerSplit = std::min(4096, ((bucket + splits - 1) / splits + 63) / 64 * 64);
    maxSplits = (bucket + keysPerSplit - 1) / keysPerSplit;
}

struct AttentionProblem {
    int D, heads, hidden, rows, ldq, cacheStride;
    std::vector<SeqShape> seqs;
    std::vector<__half> qkv;                       // (rows, ldq): q at 0, new k at hidden, new v at 2 × hidden
    std::vector<std::vector<__half>> kCache, vCache; // per sequence (past + fresh, hidden), past rows filled
    std::vector<DeviceBuffer<__half>*> dK, dV;
    DeviceBuffer<__half> dQkv, dOut;
    DeviceBuffer<AttentionSeq> dSeqs;
    DeviceBuffer<float> partialO, partialMl; // decode split workspace, sized by runDecode
    std::vector<AttentionSeq> descs;
    int maxFresh = 0, maxContext = 0;

    AttentionProblem(int D_, int heads_, std::vector<SeqShape> shapes, uint32_t seed, bool fillReference = true)
        : D(D_), heads(heads_), hidden(D_ * heads_), seqs(std::move(shapes)) {
        rows = 0;
        for (auto& s : seqs) { rows += s.fresh; maxFresh = std::max(maxFresh, s.fresh); maxContext = std::max(maxContext, s.past + s.fresh); }
        ldq = 3 * hidden;
        cacheStride = hidden;
        std::mt19937 rng(seed);
        std::normal_distribution<float> normal(0.f, 1.f);
        const float qScale = 2.f / std::sqrt((float) D); // scores of std ~2: a peaked but not one-hot softmax
        dQkv.resize((size_t) rows * ldq);
        if (fillReference) {
            qkv.resize((size_t) rows * ldq);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < ldq; c++) qkv[(size_t) r * ldq + c] = floatToHalf(normal(rng) * (c < hidden ? qScale : 1.f));
            dQkv.upload(qkv);
        } else { // benchmark: q's scale does not matter for timing; everything random on the device
            fillRandom(dQkv.p, dQkv.n, seed, qScale);
        }
        dOut.resize((size_t) rows * hidden);
        int rowStart = 0;
        for (auto& s : seqs) {
            size_t n = (size_t) (s.past + s.fresh) * cacheStride;
            std::vector<__half> k(fillReference ? n : 0), v(fillReference ? n : 0);
            if (fillReference) {
                for (size_t i = 0; i < (size_t) s.past * cacheStride; i++) { k[i] = floatToHalf(normal(rng)); v[i] = floatToHalf(normal(rng)); }
            }
            auto* bk = new DeviceBuffer<__half>(n);
            auto* bv = new DeviceBuffer<__half>(n);
            bk->poison(0x3c); // 1.0-ish pattern in FP16: an unwritten row shows up as a wrong result
            bv->poison(0x3c);
            if (!fillReference) {
                fillRandom(bk->p, n, seed * 131 + (uint32_t) dK.size());
                fillRandom(bv->p, n, seed * 137 + (uint32_t) dK.size());
            }
            if (fillReference && s.past > 0) {
                CUDA_CHECK(cudaMemcpy(bk->p, k.data(), (size_t) s.past * cacheStride * 2, cudaMemcpyHostToDevice));
                CUDA_CHECK(cudaMemcpy(bv->p, v.data(), (size_t) s.past * cacheStride * 2, cudaMemcpyHostToDevice));
            }
            kCache.push_back(std::move(k));
            vCache.push_back(std::move(v));
            dK.push_back(bk);
            dV.push_back(bv);
            descs.push_back(AttentionSeq{bk->p, bv->p, rowStart, s.fresh, s.past, 0});
            rowStart += s.fresh;
        }
        dSeqs.resize(descs.size());
        dSeqs.upload(descs);
    }
    ~AttentionProblem() { for (auto* b : dK) delete b; for (auto* b : dV) delete b; }

    void append() {
        kv_cache_append<<<rows, 128>>>(dSeqs.p, (int) descs.size(), dQkv.p + hidden, dQkv.p + 2 * hidden, ldq, hidden, cacheStride);
        LAUNCH_CHECK();
    }

    // reference: the new rows copied into the host caches, then softmax(q kᵀ) v in float64
    std::vector<double> reference() {
        std::vector<double> out((size_t) rows * hidden);
        for (size_t s = 0; s < seqs.size(); s++) {
            int past = seqs[s].past, fresh = seqs[s].fresh, start = descs[s].rowStart;
            for (int i = 0; i < fresh; i++)
                for (int c = 0; c < hidden; c++) {
                    kCache[s][(size_t) (past + i) * cacheStride + c] = qkv[(size_t) (start + i) * ldq + hidden + c];
                    vCache[s][(size_t) (past + i) * cacheStride + c] = qkv[(size_t) (start + i) * ldq + 2 * hidden + c];
                }
            std::vector<double> p(past + fresh);
            for (int i = 0; i < fresh; i++)
                for (int h = 0; h < heads; h++) {
                    int keys = past + i + 1;
                    double mx = -1e300;
                    for (int k = 0; k < keys; k++) {
                        double dot = 0;
                        for (int e = 0; e < D; e++)
                            dot += (double) halfToFloat(qkv[(size_t) (start + i) * ldq + h * D + e]) *
                                   halfToFloat(kCache[s][(size_t) k * cacheStride + h * D + e]);
                        p[k] = dot;
                        mx = std::max(mx, dot);
                    }
                    double sum = 0;
                    for (int k = 0; k < keys; k++) sum += p[k] = std::exp(p[k] - mx);
                    for (int e = 0; e < D; e++) {
                        double o = 0;
                        for (int k = 0; k < keys; k++) o += p[k] * halfToFloat(vCache[s][(size_t) k * cacheStride + h * D + e]);
                        out[(size_t) (start + i) * hidden + h * D + e] = o / sum;
                    }
                }
        }
        return out;
    }

    bool cacheMatches() {
        for (size_t s = 0; s < seqs.size(); s++) {
            std::vector<__half> k = dK[s]->download(), v = dV[s]->download();
            if (std::memcmp(k.data(), kCache[s].data(), k.size() * 2) || std::memcmp(v.data(), vCache[s].data(), v.size() * 2)) return false;
        }
        return true;
    }
};

static void compare(const char* what, const std::vector<__half>& got, const std::vector<double>& want) {
    double maxAbs = 0, num = 0, den = 0;
    size_t nonFinite = 0;
    for (size_t i = 0; i < want.size(); i++) {
        double g = halfToFloat(got[i]);
        if (!std::isfinite(g)) { nonFinite++; continue; }
        maxAbs = std::max(maxAbs, std::fabs(g - want[i]));
        num += (g - want[i]) * (g - want[i]);
        den += want[i] * want[i];
    }
    double rel = std::sqrt(num / std::max(den, 1e-300));
    bool ok = nonFinite == 0 && maxAbs < 1e-2 && rel < 5e-3; // FP16 output and (prefill) FP16 P
    std::printf("  %-58s max|err| %.2e  rel %.2e  unwritten %zu  %s\n", what, maxAbs, rel, nonFinite, ok ? "ok" : "FAIL");
    expect(ok, what);
}

static void runDecode(AttentionProblem& p, int keysPerSplit, int maxSplits) {
    size_t slots = (size_t) p.descs.size() * p.heads * maxSplits;
    if (p.partialO.n < slots * p.D) p.partialO.resize(slots * p.D);
    if (p.partialMl.n < slots * 2) p.partialMl.resize(slots * 2);
    float* partialO = p.partialO.p;
    float* partialMl = p.partialMl.p;
    dim3 grid(maxSplits, p.heads, (unsigned) p.descs.size());
    size_t smem = (size_t) keysPerSplit * 4;
    auto kernel = p.D == 64 ? attention_decode_hd64 : attention_decode_hd128;
    if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) smem));
    kernel<<<grid, 128, smem>>>(p.dSeqs.p, p.dQkv.p, p.ldq, p.cacheStride, keysPerSplit, partialO, partialMl, p.dOut.p, p.hidden);
    LAUNCH_CHECK();
    attention_decode_combine<<<dim3(p.heads, (unsigned) p.descs.size()), p.D>>>(p.dSeqs.p, keysPerSplit, maxSplits, partialO,
                                                                                partialMl, p.dOut.p, p.hidden);
    LAUNCH_CHECK();
}

static void runPrefill(AttentionProblem& p) {
    dim3 grid((p.maxFresh + 63) / 64, p.heads, (unsigned) p.descs.size());
    (p.D == 64 ? attention_prefill_hd64 : attention_prefill_hd128)<<<grid, 128>>>(p.dSeqs.p, p.dQkv.p, p.ldq, p.cacheStride,
                                                                                  p.dOut.p, p.hidden);
    LAUNCH_CHECK();
}

static void checkAttention(int sms) {
    std::printf("== attention vs float64 CPU reference (FP16 out; append checked byte for byte)\n");
    uint32_t seed = 1;
    for (int D : {64, 128}) {
        const int heads = D == 64 ? 6 : 3;
        {   // decode: one new token per sequence, contexts from 1 to 3001
            AttentionProblem p(D, heads, {{0, 1}, {1, 1}, {63, 1}, {64, 1}, {200, 1}, {1000, 1}, {3000, 1}}, seed++);
            p.append();
            std::vector<double> want = p.reference();
            expect(p.cacheMatches(), "kv_cache_append decode");
            for (int kps : {64, 256, 4096}) {
                int maxSplits = (p.maxContext + kps - 1) / kps;
                p.dOut.poison(0xff);
                runDecode(p, kps, maxSplits);
                CUDA_CHECK(cudaDeviceSynchronize());
                char what[128];
                std::snprintf(what, sizeof what, "decode hd%d, 7 seqs ctx 1..3001, keysPerSplit %d", D, kps);
                compare(what, p.dOut.download(), want);
            }
            {   // a bucketed split may give even the longest sequence idle trailing splits
                p.dOut.poison(0xff);
                runDecode(p, 256, (p.maxContext + 255) / 256 + 2);
                CUDA_CHECK(cudaDeviceSynchronize());
                char what[128];
                std::snprintf(what, sizeof what, "decode hd%d, keysPerSplit 256, 2 idle splits past the longest", D);
                compare(what, p.dOut.download(), want);
            }
            int kps, maxSplits;
            decodeSplits((int) p.descs.size(), heads, p.maxContext, sms, kps, maxSplits);
            p.dOut.poison(0xff);
            runDecode(p, kps, maxSplits);
            CUDA_CHECK(cudaDeviceSynchronize());
            char what[128];
            std::snprintf(what, sizeof what, "decode hd%d, heuristic keysPerSplit %d", D, kps);
            compare(what, p.dOut.download(), want);
            p.dOut.poison(0xff);
            runPrefill(p); // the prefill kernel takes newTokens == 1 as well
            CUDA_CHECK(cudaDeviceSynchronize());
            std::snprintf(what, sizeof what, "prefill kernel on the decode batch hd%d", D);
            compare(what, p.dOut.download(), want);
        }
        {   // prefill / chunked prefill: tiles cut at odd places, past context, mixed with decode rows
            AttentionProblem p(D, heads, {{0, 1}, {0, 17}, {0, 64}, {0, 130}, {37, 90}, {500, 64}, {0, 300}, {129, 1}, {5, 200}},
                               seed++);
            p.append();
            std::vector<double> want = p.reference();
            expect(p.cacheMatches(), "kv_cache_append prefill");
            p.dOut.poison(0xff);
            runPrefill(p);
            CUDA_CHECK(cudaDeviceSynchronize());
            char what[128];
            std::snprintf(what, sizeof what, "prefill hd%d, 9 seqs (past,new) up to (0,300),(500,64)", D);
            compare(what, p.dOut.download(), want);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Benchmarks
// ------------------------------------------------------------------------------------------------
template <typename F>
static double medianMicros(F&& launch, int iterations, int repeats = 7) {
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) launch(i);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> times;
    int call = 0;
    for (int r = 0; r < repeats; r++) {
        CUDA_CHECK(cudaEventRecord(a));
        for (int i = 0; i < iterations; i++) launch(call++);
        CUDA_CHECK(cudaEventRecord(b));
        CUDA_CHECK(cudaEventSynchronize(b));
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        times.push_back(1000.0 * ms / iterations);
    }
    LAUNCH_CHECK();
    std::sort(times.begin(), times.end());
    CUDA_CHECK(cudaEventDestroy(a));
    CUDA_CHECK(cudaEventDestroy(b));
    return times[times.size() / 2];
}

// The codec kernels for rows of T (FP16: a GPU stage's link rows in the benches; FP32: a GPU worker's residual stream).
template <typename T>
static void benchCodecs() {
    constexpr bool kF32 = sizeof(T) == 4;
    const int width = 12288, clusters = 8;
    std::printf("== link codec kernels, width %d, %s input, %d clusters; GB/s = (bytes read + written) / time\n", width,
                kF32 ? "FP32" : "FP16", clusters);
    {   // the ceiling: a large device-to-device copy
        size_t bytes = (size_t) 2 << 30;
        DeviceBuffer<uint8_t> a(bytes), b(bytes);
        CUDA_CHECK(cudaMemset(a.p, 1, bytes));
        double us = medianMicros([&](int) { CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); }, 5);
        std::printf("  cudaMemcpy D2D 2 GiB: %.0f GB/s (read + write)\n", 2.0 * bytes / us / 1e3);
    }
    std::vector<int> permI(width), ends(clusters);
    std::mt19937 rng(5);
    for (int j = 0; j < width; j++) permI[j] = j;
    std::shuffle(permI.begin(), permI.end(), rng);
    for (int c = 0; c < clusters; c++) ends[c] = (c + 1) * width / clusters - (c < clusters - 1 ? 13 * c : 0);
    DeviceBuffer<uint16_t> perm(width), inverse(width);
    std::vector<int> inv(width);
    for (int j = 0; j < width; j++) inv[permI[j]] = j;
    perm.upload(toU16(permI));
    inverse.upload(toU16(inv));
    DeviceBuffer<int> dEnds(clusters);
    dEnds.upload(ends);
    DeviceBuffer<int> status(1);
    std::printf("  %5s | %-8s | %9s %9s | %9s %9s | %8s %8s | %s\n", "rows", "codec", "enc us", "enc GB/s", "dec us",
                "dec GB/s", "copy us", "copyGB/s", "enc/copy dec/copy (same bytes)");
    std::vector<int> rowCounts = {1, 16, 128, 512, 2048};
    if (const char* only = std::getenv("BENCH_ROWS")) rowCounts = {std::atoi(only)}; // e.g. one size under a profiler
    for (int rows : rowCounts) {
        size_t inBytes = (size_t) rows * width * sizeof(T);
        // rotate input sets so that one pass's data is not in the L2 (60 MB) from the previous one
        int sets = (int) std::max<size_t>(1, std::min<size_t>(64, ((size_t) 512 << 20) / inBytes));
        DeviceBuffer<T> x(inBytes / sizeof(T) * sets);
        {
            std::vector<T> host(inBytes / sizeof(T));
            std::normal_distribution<float> normal(0.f, 1.f);
            for (auto& h : host) {
                if constexpr (kF32) h = normal(rng); else h = floatToHalf(normal(rng));
            }
            for (int s = 0; s < sets; s++) CUDA_CHECK(cudaMemcpy(x.p + (size_t) s * host.size(), host.data(), inBytes, cudaMemcpyHostToDevice));
        }
        DeviceBuffer<T> out(inBytes / sizeof(T) * sets);
        const int threads = rows < 264 ? 1024 : 256;
        struct BenchCodec { int bits; bool regather; const char* name; };
        std::vector<BenchCodec> codecs = {BenchCodec{8, false, "int8"}, BenchCodec{4, false, "int4rptq"}, BenchCodec{3, false, "int3rptq"}};
        if (!kF32) codecs.insert(codecs.end(), {BenchCodec{4, true, "int4 rg"}, BenchCodec{3, true, "int3 rg"}});
        for (BenchCodec codec : codecs) {
            const int bits = codec.bits;
            size_t paramsBytes = bits == 8 ? 2 * rows : 4 + (size_t) rows * clusters * 4;
            size_t payloadBytes = (size_t) rows * ((width * bits + 7) / 8);
            DeviceBuffer<uint8_t> params(paramsBytes * sets), payload(payloadBytes * sets);
            size_t encSmem = rptq_encode_smem_bytes(width, clusters, sizeof(T)), decSmem = rptq_decode_smem_bytes(width, clusters, sizeof(T));
            void (*rptqEncoder)(const T*, int, const unsigned short*, const int*, int, unsigned, unsigned char*, unsigned char*, int*);
            void (*rptqDecoder)(const unsigned char*, const unsigned char*, int, const unsigned short*, const int*, int, T*);
            if constexpr (kF32) {
                rptqEncoder = bits == 4 ? rptq4_encode_f32 : rptq3_encode_f32;
                rptqDecoder = bits == 4 ? rptq4_decode_f32 : rptq3_decode_f32;
            } else {
                rptqEncoder = codec.regather ? (bits == 4 ? rptq4_encode_f16_regather : rptq3_encode_f16_regather)
                                             : (bits == 4 ? rptq4_encode_f16 : rptq3_encode_f16);
                rptqDecoder = bits == 4 ? rptq4_decode_f16 : rptq3_decode_f16;
            }
            if (encSmem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(rptqEncoder, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) encSmem));
            if (decSmem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(rptqDecoder, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) decSmem));
            // as LinkCodecKernels: a holding encode gets warps enough to hold the row (6 chunks a warp FP16, 3 FP32)
            const int chunks = width / 256, held = kF32 ? 3 : 6;
            const int encodeThreads = codec.regather ? threads : std::max(threads, 32 * ((chunks + held - 1) / held));
            // the INT8 encode likewise holds the row when each thread has at most 64 FP16 / 32 FP32 values
            const int int8Threads = std::max(threads, (width / (kF32 ? 32 : 64) + 31) / 32 * 32);
            auto encode = [&](int call) {
                int s = call % sets;
                const T* xs = x.p + (size_t) s * rows * width;
                uint8_t *ps = params.p + paramsBytes * s, *ys = payload.p + payloadBytes * s;
                if (bits != 8) rptqEncoder<<<rows, encodeThreads, encSmem>>>(xs, width, perm.p, dEnds.p, clusters, 7, ps, ys, status.p);
                else if constexpr (kF32) int8_token_encode_f32<<<rows, int8Threads, 0>>>(xs, width, (unsigned short*) ps, (signed char*) ys, status.p);
                else int8_token_encode_f16<<<rows, int8Threads, 0>>>(xs, width, (unsigned short*) ps, (signed char*) ys, status.p);
            };
            auto decode = [&](int call) {
                int s = call % sets;
                T* os = out.p + (size_t) s * rows * width;
                uint8_t *ps = params.p + paramsBytes * s, *ys = payload.p + payloadBytes * s;
                if (bits != 8) rptqDecoder<<<rows, threads, decSmem>>>(ps, ys, width, inverse.p, dEnds.p, clusters, os);
                else if constexpr (kF32) int8_token_decode_f32<<<rows, threads>>>((unsigned short*) ps, (signed char*) ys, width, os);
                else int8_token_decode_f16<<<rows, threads>>>((unsigned short*) ps, (signed char*) ys, width, os);
            };
            int iterations = rows <= 16 ? 200 : 50;
            double encUs = medianMicros(encode, iterations), decUs = medianMicros(decode, iterations);
            double moved = (double) inBytes + paramsBytes + payloadBytes;
            // a copy of the same byte count (read + write = moved): copies moved / 2 bytes
            size_t copyBytes = (size_t) (moved / 2);
            double copyUs = medianMicros([&](int call) {
                int s = call % sets;
                CUDA_CHECK(cudaMemcpyAsync((uint8_t*) out.p + inBytes * s, (uint8_t*) x.p + inBytes * s, copyBytes,
                                           cudaMemcpyDeviceToDevice));
            }, iterations);
            std::printf("  %5d | %-8s | %9.2f %9.0f | %9.2f %9.0f | %8.2f %8.0f | %5.0f%% %5.0f%%\n", rows,
                        codec.name, encUs, moved / encUs / 1e3, decUs,
                        moved / decUs / 1e3, copyUs, moved / copyUs / 1e3, 100 * copyUs / encUs, 100 * copyUs / decUs);
        }
    }
}

static void benchAttention(int sms) {
    const int heads = 96, D = 128, hidden = heads * D;
    std::printf("== attention at OPT-175B shapes (%d heads x %d), FP16 KV cache, per-sequence caches\n", heads, D);
    std::printf("  %-8s %5s %5s | %10s | %s\n", "phase", "batch", "ctx", "us", "throughput");
    for (int ctx : {512, 2048}) {
        for (int batch : {1, 8, 32, 64}) {
            std::vector<SeqShape> shapes(batch, SeqShape{ctx - 1, 1});
            AttentionProblem p(D, heads, shapes, 7, false);
            int kps, maxSplits;
            decodeSplits(batch, heads, ctx, sms, kps, maxSplits);
            double us = medianMicros([&](int) { runDecode(p, kps, maxSplits); }, 20);
            double kvBytes = 2.0 * batch * ctx * hidden * 2;
            std::printf("  %-8s %5d %5d | %10.1f | %6.0f GB/s KV read (keysPerSplit %d)\n", "decode", batch, ctx, us,
                        kvBytes / us / 1e3, kps);
        }
        for (int batch : {1, 4, 16}) {
            std::vector<SeqShape> shapes(batch, SeqShape{0, ctx});
            AttentionProblem p(D, heads, shapes, 9, false);
            p.append();
            double us = medianMicros([&](int) { runPrefill(p); }, 5);
            double flops = 4.0 * batch * heads * D * ((double) ctx * (ctx + 1) / 2); // causal: QKᵀ and PV
            std::printf("  %-8s %5d %5d | %10.1f | %6.1f TFLOP/s (causal FLOPs)\n", "prefill", batch, ctx, us, flops / us / 1e6);
        }
    }
}

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "all";
    std::string goldenDir = argc > 2 ? argv[2] : "kernels/src/test/resources/golden";
    std::vector<Golden> goldens = loadGoldens(goldenDir);
    checkHostReference(goldens);
    if (mode != "cpu") {
        cudaDeviceProp prop;
        CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        std::printf("GPU: %s, %d SMs, CC %d.%d, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.major, prop.minor,
                    prop.l2CacheSize >> 20);
        const bool codecsOnly = mode == "codecs" || mode == "codecs-check", attention = !codecsOnly;
        if (mode == "all" || mode == "check" || codecsOnly) {
            checkCodecKernels(goldens);
            checkCodecShapes();
            if (attention) checkAttention(prop.multiProcessorCount);
        }
        if ((mode == "all" || mode == "bench" || mode == "codecs") && failures == 0) {
            benchCodecs<__half>();
            benchCodecs<float>();
            if (attention) benchAttention(prop.multiProcessorCount);
        }
    }
    std::printf("%s: %d failure(s)\n", failures == 0 ? "PASS" : "FAIL", failures);
    return failures == 0 ? 0 : 1;
}
