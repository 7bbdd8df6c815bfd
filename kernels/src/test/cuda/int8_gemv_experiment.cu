// EXPERIMENT, not shipped (measured slower than cuBLASLt on every OPT-175B shape: kernels/bench/NOTES.md, "An INT8
// GEMV of our own"). Kept with its harness (int8_gemv_test.cu) because it measures the floor the decode GEMMs sit on.
//
// Exact INT8 GEMM for decode batches: Y[M,N] (int32, row-major) = X[M,K] (int8) · W[N,K]^T (int8, the weights as
// stored), for M ≤ 16, what the W8A8 dequantize epilogue consumes (same output as cuBLASLt's INT8_INT32 plan).
//
// At M ≤ 16 the GEMM is a read of W: 151 MB for OPT-175B's out projection, where cuBLASLt's IMMA kernels stream at
// ~3.5 TB/s while its FP16 kernels reach ~4.1 TB/s on the same GPU. This kernel is built for the stream alone:
//  * One block owns 16 · kGroups rows of W (kGroups mma M-tiles per warp) and `blockDim.x / 32` warps split K, each reading a
//    256-byte stretch of both of its lane's rows per step, interleaved across warps (the block walks W's rows in
//    order), with the four 16-byte loads of a step in flight before any mma; W goes through the streaming cache
//    path (it is read once), X through the read-only path (every block rereads it from L2).
//  * The tokens are the mma's N: one n8 tile for M ≤ 8, two for M ≤ 16 (`br_int8_gemv_m8`, `br_int8_gemv_m16`).
//  * A dot product does not care in which order K is summed, so each lane's contiguous 16 bytes feed its
//    m16n8k32 fragment registers directly: within a 64-byte chunk, lane q (= lane % 4) holds bytes q·16 … q·16+15 of
//    its W rows and of its token's X row; bytes 0–7 are one mma's logical k = {q·4 … q·4+3, 16+q·4 … 16+q·4+3}, bytes
//    8–15 the next one's. A and B agree on the mapping, so the sum is the plain dot product, exact in int32.
//  * The warps' partial sums meet in shared memory in a fixed order: no atomics, no zeroed output, the same bits on
//    every run.
// Needs K % 64 == 0, 16-byte aligned X and W, M in 1..16; mma.sync s8 needs sm_80 or newer.
#pragma once

#include <stdint.h>

namespace int8_gemv {

constexpr int kChunk = 64;     // K bytes of one pair of mma.m16n8k32
constexpr int kMaxWarps = 8;

__device__ __forceinline__ void mma_s8(int (&c)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                       unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// The two mmas of one 64-byte chunk: w0/w1 = the lane's 16 bytes of rows g and g+8, xb = of its token's row.
__device__ __forceinline__ void chunk(int (&acc)[4], const int4& w0, const int4& w1, const int4& xb) {
    mma_s8(acc, w0.x, w1.x, w0.y, w1.y, xb.x, xb.y);
    mma_s8(acc, w0.z, w1.z, w0.w, w1.w, xb.z, xb.w);
}

// kTiles n8 token tiles (M ≤ 8 · kTiles); each warp owns kGroups groups of 16 rows (the block: 16 · kGroups rows, X
// read once per block for all of them); kUnroll 64-byte chunks per warp step.
template <int kTiles, int kGroups, int kUnroll>
__device__ __forceinline__ void gemv(const int8_t* __restrict__ x, const int8_t* __restrict__ w, int32_t* __restrict__ y,
                                     int m, int n, int k) {
    constexpr int kAcc = kGroups * kTiles * 4;
    __shared__ int partial[kMaxWarps - 1][kAcc][32];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    const int g = lane >> 2;
    const int q = lane & 3;
    const int rowBase = blockIdx.x * 16 * kGroups;
    // Rows past N (the last block) read row N-1 and are not stored.
    const int8_t* w0[kGroups];
    const int8_t* w1[kGroups];
#pragma unroll
    for (int r = 0; r < kGroups; r++) {
        w0[r] = w + (size_t) min(rowBase + r * 16 + g, n - 1) * k + q * 16;
        w1[r] = w + (size_t) min(rowBase + r * 16 + g + 8, n - 1) * k + q * 16;
    }
    const int8_t* xs[kTiles];
    bool live[kTiles];
#pragma unroll
    for (int t = 0; t < kTiles; t++) {
        const int token = t * 8 + g;
        live[t] = token < m;
        xs[t] = x + (size_t) min(token, m - 1) * k + q * 16;
    }
    int acc[kGroups][kTiles][4];
#pragma unroll
    for (int r = 0; r < kGroups; r++) {
#pragma unroll
        for (int t = 0; t < kTiles; t++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                acc[r][t][i] = 0;
            }
        }
    }
    constexpr int kStep = kChunk * kUnroll;
    const int full = k / kStep * kStep;
    for (int kk = warp * kStep; kk < full; kk += kStep * warps) {
        int4 a[kGroups][kUnroll];
        int4 b[kGroups][kUnroll];
        int4 xb[kTiles][kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
#pragma unroll
            for (int r = 0; r < kGroups; r++) {
                a[r][u] = __ldcs(reinterpret_cast<const int4*>(w0[r] + kk + u * kChunk));
                b[r][u] = __ldcs(reinterpret_cast<const int4*>(w1[r] + kk + u * kChunk));
            }
#pragma unroll
            for (int t = 0; t < kTiles; t++) {
                xb[t][u] = live[t] ? __ldg(reinterpret_cast<const int4*>(xs[t] + kk + u * kChunk)) : make_int4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
#pragma unroll
            for (int r = 0; r < kGroups; r++) {
#pragma unroll
                for (int t = 0; t < kTiles; t++) {
                    chunk(acc[r][t], a[r][u], b[r][u], xb[t][u]);
                }
            }
        }
    }
    for (int kk = full + warp * kChunk; kk < k; kk += kChunk * warps) {
        int4 xb[kTiles];
#pragma unroll
        for (int t = 0; t < kTiles; t++) {
            xb[t] = live[t] ? __ldg(reinterpret_cast<const int4*>(xs[t] + kk)) : make_int4(0, 0, 0, 0);
        }
#pragma unroll
        for (int r = 0; r < kGroups; r++) {
            const int4 a = __ldcs(reinterpret_cast<const int4*>(w0[r] + kk));
            const int4 b = __ldcs(reinterpret_cast<const int4*>(w1[r] + kk));
#pragma unroll
            for (int t = 0; t < kTiles; t++) {
                chunk(acc[r][t], a, b, xb[t]);
            }
        }
    }
    if (warp > 0) {
#pragma unroll
        for (int r = 0; r < kGroups; r++) {
#pragma unroll
            for (int t = 0; t < kTiles; t++) {
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    partial[warp - 1][(r * kTiles + t) * 4 + i][lane] = acc[r][t][i];
                }
            }
        }
    }
    __syncthreads();
    if (warp != 0) {
        return;
    }
    for (int s = 1; s < warps; s++) {
#pragma unroll
        for (int r = 0; r < kGroups; r++) {
#pragma unroll
            for (int t = 0; t < kTiles; t++) {
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    acc[r][t][i] += partial[s - 1][(r * kTiles + t) * 4 + i][lane];
                }
            }
        }
    }
    // Accumulator fragment: c0, c1 at row g, tokens q·2 and q·2+1 of the tile; c2, c3 the same at row g+8.
#pragma unroll
    for (int r = 0; r < kGroups; r++) {
#pragma unroll
        for (int t = 0; t < kTiles; t++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int row = rowBase + r * 16 + g + (i >= 2 ? 8 : 0);
                const int token = t * 8 + q * 2 + (i & 1);
                if (row < n && token < m) {
                    y[(size_t) token * n + row] = acc[r][t][i];
                }
            }
        }
    }
}

}  // namespace int8_gemv

#ifndef BR_INT8_GEMV_GROUPS
#define BR_INT8_GEMV_GROUPS 2
#define BR_INT8_GEMV_UNROLL 2
#endif
// Grid: ceil(N / (16 · BR_INT8_GEMV_GROUPS)) blocks of 32 × warps threads (warps in 1..8: how many ways K is split
// inside a block).
extern "C" __global__ void __launch_bounds__(256) br_int8_gemv_m8(const int8_t* x, const int8_t* w, int32_t* y, int m,
                                                                   int n, int k) {
    int8_gemv::gemv<1, BR_INT8_GEMV_GROUPS, BR_INT8_GEMV_UNROLL>(x, w, y, m, n, k);
}

extern "C" __global__ void __launch_bounds__(256) br_int8_gemv_m16(const int8_t* x, const int8_t* w, int32_t* y, int m,
                                                                    int n, int k) {
    int8_gemv::gemv<2, BR_INT8_GEMV_GROUPS, BR_INT8_GEMV_UNROLL>(x, w, y, m, n, k);
}
