package io.bitrelay.runtime;

import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import io.bitrelay.runtime.tensor.DType;

import java.nio.file.Path;

/** Small synthetic checkpoints the runtime tests share. */
public final class TestModels {
    private TestModels() {
    }

    /** Pre-LN, 3 layers, hidden 64, vocab 300 (just over the byte-level tokenizer's 260 base tokens). */
    public static OptConfig tinyConfig() {
        return new OptConfig(300, 64, 3, 4, 128, 160, 64, true, false, true, 2, 2, 1, "float32");
    }

    public static Path writeTiny(Path directory) {
        return SyntheticCheckpointWriter.write(directory, tinyConfig(), SyntheticOptions.defaults().withStorage(DType.F32));
    }
}
