// Check and benchmark of kernels/src/main/cuda/sampling.cu (no Maven, no Java): the kernel against a host port
// of its algorithm (DeviceSamplingReference's rules) over random FP16 rows of OPT's vocab, then µs per launch at
// 1, 16, 64 and 256 rows. Exit code 1 on a greedy mismatch or more than a few sampled ones.
//   nvcc -O2 -std=c++17 -gencode arch=compute_90a,code=sm_90a -o sampling_test sampling_test.cu && ./sampling_test
#include "../../main/cuda/sampling.cu"

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "cuda_check.h"

static const int VOCAB = 50272;

// ---- host port ------------------------------------------------------------------------------------------
static unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static unsigned key_of(__half h) {
    unsigned bits = __half_as_ushort(h);
    if (bits == 0x8000u) bits = 0;
    return (bits & 0x8000u) ? (~bits & 0xffffu) : (bits | 0x8000u);
}
static float value_of_key(unsigned key) {
    unsigned bits = (key & 0x8000u) ? (key & 0x7fffu) : (~key & 0xffffu);
    return __half2float(__ushort_as_half((unsigned short) bits));
}
static float weight(float l, float max, float t) { return std::exp((l - max) / t); }

struct Row {
    const __half* l;
    int n;
    float at_least(unsigned key, bool weighted, float max, float t) const {
        float s = 0;
        for (int i = 0; i < n; i++)
            if (key_of(l[i]) >= key) s += weighted ? weight(__half2float(l[i]), max, t) : 1.f;
        return s;
    }
    unsigned threshold(unsigned lo, unsigned hi, float target, bool weighted, float max, float t) const {
        while (lo < hi) {
            unsigned mid = lo + (hi - lo + 1) / 2;
            if (at_least(mid, weighted, max, t) >= target) lo = mid; else hi = mid - 1;
        }
        return lo;
    }
};

static int host_sample(const __half* l, int n, const BrSampleRow& p, float* logprob) {
    Row r{l, n};
    int argmax = 0;
    for (int i = 1; i < n; i++) if (__half2float(l[i]) > __half2float(l[argmax])) argmax = i;
    float max = __half2float(l[argmax]);
    unsigned max_key = key_of(l[argmax]);
    int token = argmax;
    if (p.temperature > 0) {
        float t = p.temperature;
        unsigned cut = 0;
        float allowed = (float) n, total;
        if (p.top_k > 0 && p.top_k < n) {
            cut = r.threshold(0, max_key, (float) p.top_k, false, max, t);
            allowed = p.top_k - r.at_least(cut + 1, false, max, t);
            total = r.at_least(cut + 1, true, max, t) + allowed * weight(value_of_key(cut), max, t);
        } else {
            total = r.at_least(0, true, max, t);
        }
        if (p.top_p < 1) {
            float target = p.top_p * total;
            unsigned key = r.threshold(cut, max_key, target, true, max, t);
            float above = r.at_least(key + 1, true, max, t);
            float need = std::ceil((target - above) / weight(value_of_key(key), max, t));
            if (key != cut) allowed = r.at_least(key, false, max, t) - r.at_least(key + 1, false, max, t);
            allowed = std::fmin(std::fmax(need, 1.f), allowed);
            cut = key;
        }
        unsigned long long stream = mix64(mix64(p.seed) ^ p.counter);
        float best = -INFINITY;
        int seen = 0;
        for (int i = 0; i < n; i++) {
            unsigned k = key_of(l[i]);
            bool kept = k > cut || (k == cut && seen++ < allowed);
            if (!kept) continue;
            unsigned long long h = mix64(stream + (unsigned long long) (i + 1) * BR_GOLDEN);
            float u = (float) (2u * (unsigned) (h >> 41) + 1u) * 0x1p-24f;
            float s = __half2float(l[i]) / t + -std::log(-std::log(u));
            if (s > best) { best = s; token = i; }
        }
    }
    float sum = r.at_least(0, true, max, 1.f);
    *logprob = (__half2float(l[token]) - max) - std::log(sum);
    return token;
}

// ---- harness --------------------------------------------------------------------------------------------
int main() {
    const int maxRows = 256;
    std::mt19937_64 rng(7);
    std::normal_distribution<float> normal(0.f, 3.f);
    std::vector<__half> logits((size_t) maxRows * VOCAB);
    for (size_t i = 0; i < logits.size(); i++) {
        float v = normal(rng);
        if (i % VOCAB < 64) v = 8.f + std::round(normal(rng)) * 0.25f;  // a head of tied large logits
        logits[i] = __float2half_rn(v);
    }
    __half* dl; BrSampleRow* dp; int* dt; float* dlp;
    CUDA_CHECK(cudaMalloc(&dl, logits.size() * sizeof(__half)));
    CUDA_CHECK(cudaMalloc(&dp, maxRows * sizeof(BrSampleRow)));
    CUDA_CHECK(cudaMalloc(&dt, maxRows * sizeof(int)));
    CUDA_CHECK(cudaMalloc(&dlp, maxRows * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(dl, logits.data(), logits.size() * sizeof(__half), cudaMemcpyHostToDevice));
    struct Set { const char* name; float t; int k; float p; };
    const Set sets[] = {{"greedy", 0, 0, 1}, {"T=1", 1, 0, 1}, {"T=0.7 k=50", 0.7f, 50, 1}, {"T=1 p=0.9", 1, 0, 0.9f},
                        {"T=0.8 k=40 p=0.95", 0.8f, 40, 0.95f}, {"T=1 k=1", 1, 1, 1}, {"T=1 p=1e-6", 1, 0, 1e-6f},
                        {"T=1.3 k=20 p=0.5", 1.3f, 20, 0.5f}};
    int failures = 0;
    const int checkRows = 48;
    for (const Set& s : sets) {
        std::vector<BrSampleRow> params(checkRows);
        for (int r = 0; r < checkRows; r++) params[r] = {1234ull + r, (unsigned long long) r * 3, s.t, s.k, s.p, 0};
        CUDA_CHECK(cudaMemcpy(dp, params.data(), checkRows * sizeof(BrSampleRow), cudaMemcpyHostToDevice));
        br_sample_f16<<<checkRows, 1024>>>(dl, VOCAB, dp, dt, dlp);
        CUDA_CHECK(cudaGetLastError());
        std::vector<int> tokens(checkRows);
        std::vector<float> lps(checkRows);
        CUDA_CHECK(cudaMemcpy(tokens.data(), dt, checkRows * sizeof(int), cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(lps.data(), dlp, checkRows * sizeof(float), cudaMemcpyDeviceToHost));
        int mismatches = 0, greedyMatches = 0;
        float worstLp = 0;
        for (int r = 0; r < checkRows; r++) {
            const __half* row = logits.data() + (size_t) r * VOCAB;
            float lp;
            int expected = host_sample(row, VOCAB, params[r], &lp);
            BrSampleRow g{0, 0, 0.f, 0, 1.f, 0};
            float glp;
            greedyMatches += tokens[r] == host_sample(row, VOCAB, g, &glp);
            if (tokens[r] != expected) {
                mismatches++;
                std::printf("  row %d: kernel %d, host %d\n", r, tokens[r], expected);
            }
            worstLp = std::fmax(worstLp, std::fabs(lp - lps[r]));
        }
        bool ok = s.t == 0 ? mismatches == 0 : mismatches <= 1;
        failures += !ok || worstLp > 1e-3f;
        std::printf("%-20s %s: %d/%d rows differ from the host port, %d are the argmax, max |logprob diff| %.2g\n",
                    s.name, ok ? "ok" : "FAIL", mismatches, checkRows, greedyMatches, worstLp);
    }
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    const int rowCounts[] = {1, 16, 64, 256};
    const Set timed[] = {sets[0], sets[1], sets[2], sets[4]};
    for (const Set& s : timed) {
        std::vector<BrSampleRow> params(maxRows);
        for (int r = 0; r < maxRows; r++) params[r] = {99ull + r, 5ull, s.t, s.k, s.p, 0};
        CUDA_CHECK(cudaMemcpy(dp, params.data(), maxRows * sizeof(BrSampleRow), cudaMemcpyHostToDevice));
        for (int lp = 0; lp < 2; lp++) {
            std::printf("bench %-20s logprobs=%d:", s.name, lp);
            for (int rows : rowCounts) {
                for (int i = 0; i < 3; i++) br_sample_f16<<<rows, 1024>>>(dl, VOCAB, dp, dt, lp ? dlp : nullptr);
                const int iters = 50;
                CUDA_CHECK(cudaEventRecord(start));
                for (int i = 0; i < iters; i++) br_sample_f16<<<rows, 1024>>>(dl, VOCAB, dp, dt, lp ? dlp : nullptr);
                CUDA_CHECK(cudaEventRecord(stop));
                CUDA_CHECK(cudaEventSynchronize(stop));
                float ms;
                CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
                std::printf("  rows %d %.1f us", rows, ms * 1000 / iters);
            }
            std::printf("\n");
        }
    }
    std::printf(failures ? "FAILED (%d)\n" : "all checks passed\n", failures);
    return failures ? 1 : 0;
}
