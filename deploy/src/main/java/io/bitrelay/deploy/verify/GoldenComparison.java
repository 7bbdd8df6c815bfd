package io.bitrelay.deploy.verify;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitrelay.runtime.generate.Sampler;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.tokenizer.OptTokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Compares our CPU forward pass with golden outputs written by tests/python/make_goldens.py from
 * Hugging Face transformers: the tokenizer's ids, logits at prompt positions, the greedy continuation
 * and the logits of the first decode steps (which exercise the KV cache). Decoding is teacher-forced
 * with the golden tokens, so one flipped token does not hide later logit differences.
 */
public final class GoldenComparison {
    private static final ObjectMapper JSON = new ObjectMapper();

    public record Result(String checkpoint, String peer, int cases, int comparedLogits, double maxPromptLogitDiff,
                         double maxDecodeLogitDiff, int greedyTokens, int greedyMismatches, List<String> problems) {

        public double maxLogitDiff() {
            return Math.max(maxPromptLogitDiff, maxDecodeLogitDiff);
        }

        public String summary() {
            return String.format("%s vs %s: %d prompts, %d logit vectors, max |Δlogit| prompt %.3g, decode %.3g; "
                            + "greedy %d/%d tokens identical%s", checkpoint, peer, cases, comparedLogits, maxPromptLogitDiff,
                    maxDecodeLogitDiff, greedyTokens - greedyMismatches, greedyTokens,
                    problems.isEmpty() ? "" : "; problems: " + String.join("; ", problems));
        }
    }

    private GoldenComparison() {
    }

    public static Result compare(Path checkpoint, Path goldenFile) {
        JsonNode golden;
        try {
            golden = JSON.readTree(goldenFile.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(goldenFile + ": cannot read golden file: " + e.getMessage(), e);
        }
        List<String> problems = new ArrayList<>();
        double promptDiff = 0;
        double decodeDiff = 0;
        int compared = 0;
        int greedyTokens = 0;
        int greedyMismatches = 0;
        int decodeFrom = golden.path("decodeLogitsFromStep").asInt(1);
        try (OptModel model = OptModel.load(checkpoint); OptTokenizer tokenizer = OptTokenizer.load(checkpoint)) {
            for (JsonNode testCase : golden.get("cases")) {
                int[] ids = ints(testCase.get("ids"));
                int[] ours = tokenizer.encode(testCase.get("text").asText());
                if (!Arrays.equals(ids, ours)) {
                    problems.add("tokenizer ids differ for '" + testCase.get("text").asText() + "': golden "
                            + Arrays.toString(ids) + ", ours " + Arrays.toString(ours));
                }
                try (KvCache cache = model.newCache()) {
                    float[][] logits = model.forward(List.of(new SequenceChunk(ids, cache)), true);
                    JsonNode positions = testCase.get("positions");
                    for (int i = 0; i < positions.size(); i++) {
                        promptDiff = Math.max(promptDiff, maxAbsDiff(logits[positions.get(i).asInt()], testCase.get("logits").get(i)));
                        compared++;
                    }
                    float[] next = logits[ids.length - 1];
                    int[] greedy = ints(testCase.get("greedy"));
                    JsonNode decodeLogits = testCase.get("decodeLogits");
                    for (int step = 0; step < greedy.length; step++) {
                        int index = step - decodeFrom;
                        if (index >= 0 && index < decodeLogits.size()) {
                            decodeDiff = Math.max(decodeDiff, maxAbsDiff(next, decodeLogits.get(index)));
                            compared++;
                        }
                        greedyTokens++;
                        if (Sampler.argmax(next) != greedy[step]) {
                            greedyMismatches++;
                        }
                        next = model.forward(List.of(new SequenceChunk(new int[]{greedy[step]}, cache)), false)[0];
                    }
                }
            }
        }
        return new Result(golden.path("checkpoint").asText(checkpoint.getFileName().toString()), golden.path("peer").asText("?"),
                golden.get("cases").size(), compared, promptDiff, decodeDiff, greedyTokens, greedyMismatches, problems);
    }

    private static double maxAbsDiff(float[] ours, JsonNode theirs) {
        if (theirs.size() != ours.length) {
            throw new IllegalArgumentException("golden logits have " + theirs.size() + " entries, the model's vocabulary " + ours.length);
        }
        double max = 0;
        for (int i = 0; i < ours.length; i++) {
            max = Math.max(max, Math.abs(ours[i] - theirs.get(i).asDouble()));
        }
        return max;
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }
}
