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
// or mass (top-p) of elements at or above it reaches the target, found by bisection over the 2^16 keys with
// one pass over the row per step (the row stays in L2). Elements at the threshold key are kept by lowest
// index, as many as the prefix needs (a second bisection, over the index).
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

// Count (weighted == false) or mass of the elements whose key is at least `key`.
__device__ float br_at_least(const __half* __restrict__ row, int vocab, unsigned key, bool weighted, float max,
                             float temperature, float* scratch) {
    float sum = 0.f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        __half h = row[i];
        if (br_logit_key(h) >= key) {
            sum += weighted ? br_weight(__half2float(h), max, temperature) : 1.f;
        }
    }
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

// Count of elements below index `end` whose key is `key`.
__device__ float br_equal_below(const __half* __restrict__ row, int end, unsigned key, float* scratch) {
    float count = 0.f;
    for (int i = threadIdx.x; i < end; i += blockDim.x) {
        count += br_logit_key(row[i]) == key ? 1.f : 0.f;
    }
    return br_block_sum(count, scratch);
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
    const __half* row = logits + (long) blockIdx.x * vocab;
    const BrSampleRow p = params[blockIdx.x];

    float best = -INFINITY;
    int best_index = vocab;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float l = __half2float(row[i]);
        if (l > best) {  // this thread's indices ascend: it keeps its first maximum
            best = l;
            best_index = i;
        }
    }
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
            cut_key = br_threshold(row, vocab, 0, max_key, (float) p.top_k, false, max, t, scratch);
            allowed = (float) p.top_k - br_at_least(row, vocab, cut_key + 1, false, max, t, scratch);
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
        int end = vocab;
        if (br_equal_below(row, vocab, cut_key, scratch) > allowed) {
            int lo = 1, hi = vocab;
            while (lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (br_equal_below(row, mid, cut_key, scratch) >= allowed) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            end = lo;
        }
        const unsigned long long stream = br_sample_stream(p.seed, p.counter);
        float score = -INFINITY;
        int at = vocab;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
            __half h = row[i];
            unsigned k = br_logit_key(h);
            if (k > cut_key || (k == cut_key && i < end)) {
                float s = __fadd_rn(__fdiv_rn(__half2float(h), t), br_gumbel(stream, i));
                if (s > score) {
                    score = s;
                    at = i;
                }
            }
        }
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
