package io.bitrelay.deploy.verify;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** Reports how closely our forward pass matches a Hugging Face golden file (see tests/python/make_goldens.py). */
@Command(name = "golden", mixinStandardHelpOptions = true,
        description = "Compare the CPU forward pass with goldens written by transformers (tests/python/make_goldens.py).")
public final class GoldenCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR") Path model;
    @Option(names = "--golden", required = true, paramLabel = "FILE") Path golden;
    @Option(names = "--tolerance", defaultValue = "1e-3", description = "Max |Δlogit| to pass (default: ${DEFAULT-VALUE}).")
    double tolerance;

    @Override
    public Integer call() {
        GoldenComparison.Result result = GoldenComparison.compare(model, golden);
        System.out.println(result.summary());
        boolean pass = result.maxLogitDiff() <= tolerance && result.greedyMismatches() == 0 && result.problems().isEmpty();
        System.out.println(pass ? "PASS" : "FAIL (tolerance " + tolerance + ")");
        return pass ? 0 : 1;
    }
}
