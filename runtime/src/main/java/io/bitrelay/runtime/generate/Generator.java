package io.bitrelay.runtime.generate;

import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntPredicate;

/** Single-process generation: prefill the prompt, then decode one token at a time against the KV cache. */
public final class Generator {
    private final OptModel model;

    public Generator(OptModel model) {
        this.model = model;
    }

    public record Result(int[] tokens, StopReason stopReason, long prefillNanos, long decodeNanos) {
    }

    public enum StopReason { EOS, MAX_TOKENS, CALLER }

    /**
     * @param onToken called with each new token; returning false stops generation (a stop string, a
     *                cancelled stream)
     */
    public Result generate(int[] prompt, int maxNewTokens, SamplingParams sampling, IntPredicate onToken) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("prompt is empty");
        }
        int context = model.config().maxPositions();
        if (prompt.length + maxNewTokens > context) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens + max_tokens " + maxNewTokens
                    + " exceeds the model's context of " + context);
        }
        Sampler sampler = new Sampler(sampling);
        List<Integer> produced = new ArrayList<>();
        StopReason reason = StopReason.MAX_TOKENS;
        long prefillNanos = 0;
        long decodeStart = 0;
        try (KvCache cache = model.newCache()) {
            int[] input = prompt;
            for (int step = 0; step < maxNewTokens; step++) {
                long start = System.nanoTime();
                float[] logits = model.forward(List.of(new SequenceChunk(input, cache)), false)[0];
                if (step == 0) {
                    prefillNanos = System.nanoTime() - start;
                    decodeStart = System.nanoTime();
                }
                int token = sampler.next(logits);
                produced.add(token);
                if (token == model.config().eosTokenId()) {
                    reason = StopReason.EOS;
                    break;
                }
                if (!onToken.test(token)) {
                    reason = StopReason.CALLER;
                    break;
                }
                input = new int[]{token};
            }
        }
        long decodeNanos = decodeStart == 0 ? 0 : System.nanoTime() - decodeStart;
        return new Result(produced.stream().mapToInt(Integer::intValue).toArray(), reason, prefillNanos, decodeNanos);
    }
}
