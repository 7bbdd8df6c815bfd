package io.bitrelay.runtime.generate;

/**
 * How the next token is chosen. temperature = 0 means greedy (argmax); otherwise logits are divided by
 * the temperature, cut to the top-k (0 = no cut), then to the smallest set whose probability reaches
 * top-p (1 = no cut), and sampled with a generator seeded by {@code seed}: the same seed, prompt and
 * model give the same text.
 */
public record SamplingParams(float temperature, int topK, float topP, long seed) {

    public SamplingParams {
        if (!(temperature >= 0f) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k must be >= 0, got " + topK);
        }
        if (!(topP > 0f && topP <= 1f)) {
            throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        }
    }

    public static SamplingParams greedy() {
        return new SamplingParams(0f, 0, 1f, 0);
    }

    public boolean isGreedy() {
        return temperature == 0f;
    }
}
