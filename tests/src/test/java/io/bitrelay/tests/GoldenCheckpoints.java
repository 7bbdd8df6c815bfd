package io.bitrelay.tests;

import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import io.bitrelay.runtime.tensor.DType;

import java.util.List;

/**
 * The synthetic checkpoints the committed goldens were computed on. tests/python/regenerate-goldens.sh
 * writes the same checkpoints with `bitrelay synth`; keep the two in step.
 */
final class GoldenCheckpoints {
    record Spec(String name, OptConfig config, SyntheticOptions options) {
    }

    private GoldenCheckpoints() {
    }

    static List<Spec> all() {
        SyntheticOptions defaults = SyntheticOptions.defaults();
        return List.of(
                // opt-350m's structure: post-LayerNorm, 32-wide embeddings projected in and out of a 64 hidden.
                new Spec("golden-postln-proj",
                        new OptConfig(512, 64, 3, 4, 192, 128, 32, false, false, true, 2, 2, 1, "float32"),
                        defaults.withSeed(11).withStorage(DType.F32)),
                // Pre-LN with planted outlier channels, FP16, sharded with an index.
                new Spec("golden-outliers",
                        new OptConfig(768, 96, 4, 6, 384, 256, 96, true, false, true, 2, 2, 1, "float16"),
                        defaults.withSeed(22).withStorage(DType.F16).withOutliers(true).withShardBytes((long) (0.3 * 1024 * 1024))),
                // BF16 storage, 64-wide heads.
                new Spec("golden-bf16",
                        new OptConfig(1000, 128, 2, 2, 512, 256, 128, true, false, true, 2, 2, 1, "bfloat16"),
                        defaults.withSeed(33).withStorage(DType.BF16)));
    }
}
