package io.bitrelay.deploy;

import io.bitrelay.runtime.generate.SamplingParams;
import picocli.CommandLine.Option;

/** Sampling flags shared by the commands that generate text. */
public final class SamplingOptions {
    @Option(names = "--max-tokens", defaultValue = "32", description = "New tokens at most (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "Keep the k most likely tokens; 0 = all (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling threshold (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--seed", defaultValue = "0", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
    long seed;

    public SamplingParams params() {
        return new SamplingParams(temperature, topK, topP, seed);
    }
}
