package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import io.bitrelay.runtime.tensor.DType;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

/** Checkpoints and token streams the quantization tests share. */
final class QuantTestModels {
    private QuantTestModels() {
    }

    /** The tiny test shape (3 layers, hidden 64, FFN 128) with outlier channels planted at both LayerNorms. */
    static Path writeTinyWithOutliers(Path directory) {
        return SyntheticCheckpointWriter.write(directory, TestModels.tinyConfig(),
                SyntheticOptions.defaults().withStorage(DType.F32).withOutliers(true));
    }

    static int[] randomTokens(int count, long seed) {
        return new SplittableRandom(seed).ints(count, 3, TestModels.tinyConfig().vocabSize()).toArray();
    }

    /** Logits at every position of each sequence, sequences one after the other. */
    static float[][] logits(OptModel model, List<int[]> sequences) {
        int rows = sequences.stream().mapToInt(s -> s.length).sum();
        float[][] out = new float[rows][];
        int row = 0;
        for (int[] sequence : sequences) {
            try (KvCache cache = model.newCache()) {
                for (float[] logits : model.forward(List.of(new SequenceChunk(sequence, cache)), true)) {
                    out[row++] = logits;
                }
            }
        }
        return out;
    }

    static double meanSquaredError(float[][] a, float[][] b) {
        double sum = 0;
        long count = 0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                double d = (double) a[i][j] - b[i][j];
                sum += d * d;
                count++;
            }
        }
        return sum / count;
    }

    static double maxAbsDifference(float[][] a, float[][] b) {
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                max = Math.max(max, Math.abs((double) a[i][j] - b[i][j]));
            }
        }
        return max;
    }
}
