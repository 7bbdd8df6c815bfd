// Token sampling over FP16 logits on the device, so a decode step brings back one int32 per row instead of a
// row of logits. One block per row; CPU reference: io.bitrelay.runtime.generate.DeviceSamplingReference (same
// keys, same hash, same threshold rules), distribution as io.bitrelay.runtime.generate.Sampler defines it.
//
//   logits   (rows, vocab) FP16, row stride vocab
//   params   (rows) BrSampleRow: temperature (0 = greedy), top_k (0 = off), top_p (1 = off), seed, counter
//   tokens   (rows) int32 out
//   logprobs (rows) FP32 out, or null: log-softmax of the raw logits (temperature 1, no cut) at the token
//
// Greedy is the first index of the maximum (torch.argmax, Sampler.argmax): exact.
// Otherwise the token is the Gumbel-max over the kept set, argmax of l/T + g_i with g_i = -log(-log(u_i)),
// which is a draw from softmax(l/T) restricted to that set; u_i hashes (seed, counter, i), so a given (seed,
// counter) always gives the same token, whatever the batch, and the device keeps no random state.
// The kept set is that of Sampler: logits in descending order with ties by lower index, cut to the first top_k,
// then to the shortest prefix whose mass (renormalised over the top_k) reaches top_p. It is found without a sort:
// every FP16 value has a 16-bit key in value order, so the threshold is the largest key whose count (top-k)
// or mass (top-p) of elements at or above it reaches the target: for the count a radix select (two passes of
// 256-bin histograms), for the mass a bisection over the keys between the top-k cut and the maximum, one pass
// over the row per step (the row stays in L2). Elements at the threshold key are kept by lowest index, as many
// as the prefix needs (one pass with a block scan).
// Mass sums are FP32 block sums, so the CPU reference can differ from this kernel only where a prefix's mass
// lies within float rounding of top_p, or two Gumbel scores within an ulp (logf vs Math.log).
#include "common.cuh"

// One row's parameters, 32 bytes; SamplingRows packs them in this layout (little-endian).
struct BrSampleRow {
    unsigned long long seed;
    unsigned long long counter;
    float temperature;
    int top_k;
    float top_p;
    int reserved;
};

#define BR_GOLDEN 0x9e3779b97f4a7c15ull

// SplittableRandom's mix64 (Stafford's variant 13).
__device__ __forceinline__ unsigned long long br_mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// The state of a row's stream: distinct counters of one seed give unrelated streams.
__device__ __forceinline__ unsigned long long br_sample_stream(unsigned long long seed, unsigned long long counter) {
    return br_mix64(br_mix64(seed) ^ counter);
}

// Gumbel noise of element i: splitmix64's i-th output of the stream, as an odd 24-bit fraction in (0, 1)
// (exact in float, never 0 or 1).
__device__ __forceinline__ float br_gumbel(unsigned long long stream, int i) {
    unsigned long long h = br_mix64(stream + (unsigned long long) (i + 1) * BR_GOLDEN);
    float u = (float) (2u * (unsigned) (h >> 41) + 1u) * 0x1p-24f;
    return -logf(-logf(u));
}

// The FP16 value's rank in value order (-0 folded into +0 so equal values share a key).
__device__ __forceinline__ unsigned br_logit_key(__half h) {
    unsigned bits = __half_as_ushort(h);
    if (bits == 0x8000u) {
        bits = 0u;
    }
    return (bits & 0x8000u) ? (~bits & 0xffffu) : (bits | 0x8000u);
}

// exp((l - max) / T) in the reference's float operations (no contraction).
__device__ __forceinline__ float br_weight(float l, float max, float temperature) {
    return expf(__fdiv_rn(__fsub_rn(l, max), temperature));
}

// Argmax over the block, ties to the lower index; every thread gets the index.
__device__ int br_block_argmax(float v, int index, float* values, int* indices) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, offset);
        int oi = __shfl_xor_sync(0xffffffffu, index, offset);
        if (ov > v || (ov == v && oi < index)) {
            v = ov;
            index = oi;
        }
    }
    const int warps = (blockDim.x + 31) >> 5;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) {
        values[threadIdx.x >> 5] = v;
        indices[threadIdx.x >> 5] = index;
    }
    __syncthreads();
    float best = values[0];
    int at = indices[0];
    for (int w = 1; w < warps; w++) {
        if (values[w] > best || (values[w] == best && indices[w] < at)) {
            best = values[w];
            at = indices[w];
        }
    }
    return at;
}

// Calls f(i, logit) for this thread's elements, in ascending i. Rows of a multiple of 8 (OPT's 50272) are read
// 16 bytes at a time: a pass is bound by the loads' latency, and the row is read many times (from L2).
template <typename F>
__device__ __forceinline__ void br_each_logit(const __half* __restrict__ row, int vocab, F f) {
    if ((vocab & 7) == 0) {
        const uint4* vectors = reinterpret_cast<const uint4*>(row);
        for (int j = threadIdx.x; j < vocab / 8; j += blockDim.x) {
            uint4 q = __ldg(vectors + j);
            const __half* h = reinterpret_cast<const __half*>(&q);
#pragma unroll
            for (int e = 0; e < 8; e++) {
                f(8 * j + e, h[e]);
            }
        }
    } else {
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
            f(i, row[i]);
        }
    }
}

// Count (weighted == false) or mass of the elements whose key is at least `key`.
__device__ float br_at_least(const __half* __restrict__ row, int vocab, unsigned key, bool weighted, float max,
                             float temperature, float* scratch) {
    float sum = 0.f;
    br_each_logit(row, vocab, [&](int, __half h) {
        if (br_logit_key(h) >= key) {
            sum += weighted ? br_weight(__half2float(h), max, temperature) : 1.f;
        }
    });
    return br_block_sum(sum, scratch);
}

// Largest key in [lo, hi] whose br_at_least reaches target, given that lo's does.
__device__ unsigned br_threshold(const __half* __restrict__ row, int vocab, unsigned lo, unsigned hi, float target,
                                 bool weighted, float max, float temperature, float* scratch) {
    while (lo < hi) {
        unsigned mid = lo + (hi - lo + 1) / 2;
        if (br_at_least(row, vocab, mid, weighted, max, temperature, scratch) >= target) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return lo;
}

// Warp 0 finds, in a 256-bin histogram, the highest bin where the count from the top reaches `target`; returns
// it to every thread, with the count of the bins above it in *above.
__device__ int br_histogram_bin(const int* histogram, int target, int* shared_result, int* above) {
    if (threadIdx.x < 32) {
        const int lane = threadIdx.x;
        int mine = 0;
        for (int b = 0; b < 8; b++) {
            mine += histogram[8 * lane + b];
        }
        int suffix = mine;  // bins of this lane and every higher lane
        for (int offset = 1; offset < 32; offset <<= 1) {
            int other = __shfl_down_sync(0xffffffffu, suffix, offset);
            suffix += lane + offset < 32 ? other : 0;
        }
        const unsigned reached = __ballot_sync(0xffffffffu, suffix >= target);
        const int owner = 31 - __clz(reached);
        if (lane == owner) {
            int count = suffix - mine;
            int bin = 8 * lane + 7;
            for (; bin > 8 * lane && count + histogram[bin] < target; bin--) {
                count += histogram[bin];
            }
            shared_result[0] = bin;
            shared_result[1] = count;
        }
    }
    __syncthreads();
    *above = shared_result[1];
    return shared_result[0];
}

// Largest key with at least `k` elements at or above it (0 < k <= vocab), and the count above it: a radix select
// over the key's two bytes, two passes with shared-memory counts (integer atomics: deterministic).
__device__ unsigned br_top_k_key(const __half* __restrict__ row, int vocab, int k, int* histogram, int* shared_result,
                                 int* above) {
    unsigned high = 0;
    int above_high = 0;
    for (int level = 0; level < 2; level++) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) {
            histogram[b] = 0;
        }
        __syncthreads();
        br_each_logit(row, vocab, [&](int, __half h) {
            unsigned key = br_logit_key(h);
            if (level == 0) {
                atomicAdd(&histogram[key >> 8], 1);
            } else if ((key >> 8) == high) {
                atomicAdd(&histogram[key & 0xffu], 1);
            }
        });
        __syncthreads();
        int count;
        int bin = br_histogram_bin(histogram, k - above_high, shared_result, &count);
        __syncthreads();  // shared_result and histogram are reused
        if (level == 0) {
            high = bin;
            above_high = count;
        } else {
            *above = above_high + count;
            return (high << 8) | bin;
        }
    }
    return 0;  // not reached
}

// One past the index of the `allowed`-th element (by index) whose key is `key`, or vocab when there are no more
// than `allowed` of them. Threads take contiguous slices here, so a scan of their counts orders them by index.
__device__ int br_tie_end(const __half* __restrict__ row, int vocab, unsigned key, int allowed, int* scan,
                          int* shared_result) {
    const int slice = (vocab + blockDim.x - 1) / blockDim.x;
    const int begin = min(vocab, (int) threadIdx.x * slice);
    const int stop = min(vocab, begin + slice);
    int mine = 0;
    for (int i = begin; i < stop; i++) {
        mine += br_logit_key(row[i]) == key ? 1 : 0;
    }
    // exclusive scan over the block: within warps, then over the warps' totals
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    int inclusive = mine;
    for (int offset = 1; offset < 32; offset <<= 1) {
        int other = __shfl_up_sync(0xffffffffu, inclusive, offset);
        inclusive += lane >= offset ? other : 0;
    }
    if (threadIdx.x == 0) {
        shared_result[0] = vocab;
    }
    if (lane == 31) {
        scan[warp] = inclusive;
    }
    __syncthreads();
    int before = inclusive - mine;
    for (int w = 0; w < warp; w++) {
        before += scan[w];
    }
    if (before < allowed && before + mine >= allowed) {
        int seen = before;
        for (int i = begin; i < stop; i++) {
            if (br_logit_key(row[i]) == key && ++seen == allowed) {
                shared_result[0] = i + 1;
                break;
            }
        }
    }
    __syncthreads();
    int total = 0;
    for (int w = 0; w < warps; w++) {
        total += scan[w];
    }
    const int end = total > allowed ? shared_result[0] : vocab;
    __syncthreads();
    return end;
}

// The FP16 value of a key (br_logit_key's inverse).
__device__ __forceinline__ float br_key_value(unsigned key) {
    unsigned bits = (key & 0x8000u) ? (key & 0x7fffu) : (~key & 0xffffu);
    return __half2float(__ushort_as_half((unsigned short) bits));
}

extern "C" __global__ void br_sample_f16(const __half* __restrict__ logits, int vocab,
                                         const BrSampleRow* __restrict__ params, int* __restrict__ tokens,
                                         float* __restrict__ logprobs) {
    __shared__ float scratch[BR_MAX_WARPS];
    __shared__ int scratch_index[BR_MAX_WARPS];
    __shared__ int histogram[256];
    __shared__ int shared_result[2];
    const __half* row = logits + (long) blockIdx.x * vocab;
    const BrSampleRow p = params[blockIdx.x];

    float best = -INFINITY;
    int best_index = vocab;
    br_each_logit(row, vocab, [&](int i, __half h) {
        float l = __half2float(h);
        if (l > best) {  // this thread's indices ascend: it keeps its first maximum
            best = l;
            best_index = i;
        }
    });
    const int argmax = br_block_argmax(best, best_index, scratch, scratch_index);
    const float max = __half2float(row[argmax]);
    const unsigned max_key = br_logit_key(row[argmax]);

    int token = argmax;
    if (p.temperature > 0.f) {
        const float t = p.temperature;
        // The kept set so far: keys above cut_key, and the first `allowed` (by index) of those equal to it.
        unsigned cut_key = 0;
        float allowed = (float) vocab;
        float total;  // its mass
        if (p.top_k > 0 && p.top_k < vocab) {
            int above;
            cut_key = br_top_k_key(row, vocab, p.top_k, histogram, shared_result, &above);
            allowed = (float) (p.top_k - above);
            total = __fadd_rn(br_at_least(row, vocab, cut_key + 1, true, max, t, scratch),
                              __fmul_rn(allowed, br_weight(br_key_value(cut_key), max, t)));
        } else {
            total = br_at_least(row, vocab, 0, true, max, t, scratch);
        }
        if (p.top_p < 1.f) {
            // Shortest prefix reaching top_p of the kept mass: keys above the new cut hold less than the target.
            const float target = __fmul_rn(p.top_p, total);
            const unsigned key = br_threshold(row, vocab, cut_key, max_key, target, true, max, t, scratch);
            const float above = br_at_least(row, vocab, key + 1, true, max, t, scratch);
            const float need = ceilf(__fdiv_rn(__fsub_rn(target, above), br_weight(br_key_value(key), max, t)));
            if (key != cut_key) {
                allowed = br_at_least(row, vocab, key, false, max, t, scratch)
                          - br_at_least(row, vocab, key + 1, false, max, t, scratch);
            }
            allowed = fminf(fmaxf(need, 1.f), allowed);
            cut_key = key;
        }
        // The index below which the first `allowed` elements at cut_key lie.
        const int end = br_tie_end(row, vocab, cut_key, (int) allowed, histogram, shared_result);
        const unsigned long long stream = br_sample_stream(p.seed, p.counter);
        float score = -INFINITY;
        int at = vocab;
        br_each_logit(row, vocab, [&](int i, __half h) {
            unsigned k = br_logit_key(h);
            if (k > cut_key || (k == cut_key && i < end)) {
                float s = __fadd_rn(__fdiv_rn(__half2float(h), t), br_gumbel(stream, i));
                if (s > score) {
                    score = s;
                    at = i;
                }
            }
        });
        token = br_block_argmax(score, at, scratch, scratch_index);
    }
    if (logprobs != nullptr) {
        const float sum = br_at_least(row, vocab, 0, true, max, 1.f, scratch);
        if (threadIdx.x == 0) {
            logprobs[blockIdx.x] = __fsub_rn(__fsub_rn(__half2float(row[token]), max), logf(sum));
        }
    }
    if (threadIdx.x == 0) {
        tokens[blockIdx.x] = token;
    }
}
