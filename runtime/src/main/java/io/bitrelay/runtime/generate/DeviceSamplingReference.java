package io.bitrelay.runtime.generate;

/**
 * The CPU port of the device's sampling kernel ({@code kernels/src/main/cuda/sampling.cu}, whose header explains
 * the algorithm): the same keys, hash, thresholds and float operations, so it picks the kernel's token for the
 * same FP16 logits and (seed, counter). Sums run in index order here and as block sums there, so the two can
 * differ only where a prefix's mass lies within float rounding of top-p, or two Gumbel scores within an ulp.
 *
 * <p>The distribution is {@link Sampler}'s: softmax(logits / T) over the top-k (ties by lower index), then over
 * the shortest prefix reaching top-p; greedy (T = 0) is {@link Sampler#argmax}. Logits must be FP16 values
 * (widened): the thresholds search their 16-bit keys. Not on any per-step path: tests and experiments.
 */
public final class DeviceSamplingReference {
    private static final long GOLDEN = 0x9e3779b97f4a7c15L;

    private DeviceSamplingReference() {
    }

    /** The token of row {@code row} of {@code params} for FP16-valued {@code logits}. */
    public static int sample(float[] logits, SamplingRows params, int row) {
        return sample(logits, params.temperature(row), params.topK(row), params.topP(row), params.seed(row),
                params.counter(row));
    }

    public static int sample(float[] logits, float temperature, int topK, float topP, long seed, long counter) {
        Row r = new Row(logits);
        int argmax = Sampler.argmax(logits);
        if (temperature == 0f) {
            return argmax;
        }
        float max = logits[argmax];
        int maxKey = key(max);
        float t = temperature;
        int vocab = logits.length;
        int cut = 0;
        float allowed = vocab;
        float total;
        if (topK > 0 && topK < vocab) {
            cut = r.threshold(0, maxKey, topK, false, max, t);
            allowed = topK - r.atLeast(cut + 1, false, max, t);
            total = r.atLeast(cut + 1, true, max, t) + allowed * weight(value(cut), max, t);
        } else {
            total = r.atLeast(0, true, max, t);
        }
        if (topP < 1f) {
            float target = topP * total;
            int key = r.threshold(cut, maxKey, target, true, max, t);
            float above = r.atLeast(key + 1, true, max, t);
            float need = (float) Math.ceil((target - above) / weight(value(key), max, t));
            if (key != cut) {
                allowed = r.atLeast(key, false, max, t) - r.atLeast(key + 1, false, max, t);
            }
            allowed = Math.min(Float.isNaN(need) ? 1f : Math.max(need, 1f), allowed);
            cut = key;
        }
        long stream = mix64(mix64(seed) ^ counter);
        float best = Float.NEGATIVE_INFINITY;
        int token = argmax;
        int seenAtCut = 0;
        for (int i = 0; i < vocab; i++) {
            int k = key(logits[i]);
            boolean kept = k > cut || (k == cut && seenAtCut++ < allowed);
            if (kept) {
                float score = logits[i] / t + gumbel(stream, i);
                if (score > best) {
                    best = score;
                    token = i;
                }
            }
        }
        return token;
    }

    /** log-softmax of the raw logits at {@code token}, as the kernel writes it. */
    public static float logprob(float[] logits, int token) {
        float max = logits[Sampler.argmax(logits)];
        return (logits[token] - max) - (float) Math.log(new Row(logits).atLeast(0, true, max, 1f));
    }

    /** The FP16 value's rank in value order, -0 folded into +0. */
    static int key(float value) {
        int bits = Float.floatToFloat16(value) & 0xffff;
        if (bits == 0x8000) {
            bits = 0;
        }
        return (bits & 0x8000) != 0 ? ~bits & 0xffff : bits | 0x8000;
    }

    static float value(int key) {
        int bits = (key & 0x8000) != 0 ? key & 0x7fff : ~key & 0xffff;
        return Float.float16ToFloat((short) bits);
    }

    /** Gumbel noise of element i of a (seed, counter) stream: splitmix64's i-th output as an odd 24-bit fraction. */
    static float gumbel(long stream, int i) {
        long h = mix64(stream + (i + 1L) * GOLDEN);
        float u = (float) (2 * (h >>> 41) + 1) * 0x1p-24f;
        return (float) -Math.log(-(float) Math.log(u));
    }

    /** SplittableRandom's mix64 (Stafford's variant 13). */
    static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    private static float weight(float l, float max, float t) {
        return (float) Math.exp((l - max) / t);
    }

    /** The row's count or mass at or above a key, and the bisection over keys, as the kernel runs them. */
    private record Row(float[] logits) {
        float atLeast(int key, boolean weighted, float max, float t) {
            float sum = 0f;
            for (float l : logits) {
                if (key(l) >= key) {
                    sum += weighted ? weight(l, max, t) : 1f;
                }
            }
            return sum;
        }

        int threshold(int lo, int hi, float target, boolean weighted, float max, float t) {
            while (lo < hi) {
                int mid = lo + (hi - lo + 1) / 2;
                if (atLeast(mid, weighted, max, t) >= target) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            return lo;
        }
    }
}
