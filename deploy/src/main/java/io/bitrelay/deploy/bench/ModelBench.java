package io.bitrelay.deploy.bench;

import io.bitrelay.deploy.ModelOptions;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.ops.cpu.CpuParallelism;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Prefill and decode throughput of the single-process CPU model (default: synthetic opt-125m shape),
 * for one sequence and for a batch of sequences decoding together.
 */
@Command(name = "model", mixinStandardHelpOptions = true,
        description = "Prefill and decode tokens/s of the CPU forward pass (default: synthetic opt-125m shape).")
public final class ModelBench implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prompt-tokens", defaultValue = "128", description = "Prompt length (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--decode-tokens", defaultValue = "32", description = "Decode steps timed (default: ${DEFAULT-VALUE}).")
    int decodeTokens;

    @Option(names = "--batch", split = ",", defaultValue = "1,8", description = "Sequences decoding together (default: ${DEFAULT-VALUE}).")
    List<Integer> batches;

    @Option(names = "--repeats", defaultValue = "3", description = "Timed repeats; the median is reported (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Override
    public void run() {
        try (OptModel model = OptModel.load(modelOptions.resolve())) {
            System.out.printf("model: %d layers, hidden %d, ffn %d, vocab %d; %d CPU threads%n", model.config().numLayers(),
                    model.config().hiddenSize(), model.config().ffnDim(), model.config().vocabSize(), CpuParallelism.threads());
            measure(model, 1); // warm-up: JIT and page faults out of the way
            System.out.println("| batch | prompt tokens | prefill tok/s | decode steps | decode tok/s | ms/step |");
            System.out.println("|---:|---:|---:|---:|---:|---:|");
            for (int batch : batches) {
                List<double[]> runs = new ArrayList<>();
                for (int r = 0; r < repeats; r++) {
                    runs.add(measure(model, batch));
                }
                runs.sort((a, b) -> Double.compare(a[1], b[1]));
                double[] median = runs.get(runs.size() / 2);
                double prefillTokensPerSecond = batch * promptTokens / median[0];
                double decodeTokensPerSecond = batch * decodeTokens / median[1];
                System.out.printf("| %d | %d | %.1f | %d | %.1f | %.1f |%n", batch, promptTokens, prefillTokensPerSecond,
                        decodeTokens, decodeTokensPerSecond, 1000 * median[1] / decodeTokens);
            }
        }
    }

    /** @return {prefill seconds, decode seconds} for {@code batch} sequences */
    private double[] measure(OptModel model, int batch) {
        SplittableRandom random = new SplittableRandom(batch);
        List<KvCache> caches = new ArrayList<>();
        try {
            List<SequenceChunk> prompts = new ArrayList<>();
            for (int i = 0; i < batch; i++) {
                KvCache cache = model.newCache();
                caches.add(cache);
                prompts.add(new SequenceChunk(random.ints(promptTokens, 4, model.config().vocabSize()).toArray(), cache));
            }
            long start = System.nanoTime();
            for (SequenceChunk prompt : prompts) {
                model.forward(List.of(prompt), false);
            }
            long prefill = System.nanoTime() - start;
            start = System.nanoTime();
            for (int step = 0; step < decodeTokens; step++) {
                List<SequenceChunk> chunks = new ArrayList<>();
                for (KvCache cache : caches) {
                    chunks.add(new SequenceChunk(new int[]{random.nextInt(4, model.config().vocabSize())}, cache));
                }
                model.forward(chunks, false);
            }
            long decode = System.nanoTime() - start;
            return new double[]{prefill / 1e9, decode / 1e9};
        } finally {
            caches.forEach(KvCache::close);
        }
    }
}
