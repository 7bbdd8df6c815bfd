package io.bitrelay.runtime.synthetic;

import io.bitrelay.runtime.tensor.DType;

/**
 * How a synthetic checkpoint is drawn.
 *
 * @param seed             every tensor is a pure function of (seed, tensor name)
 * @param storage          stored element type (F32, F16, BF16)
 * @param outliers         plant LLM-like outlier channels at both LayerNorms of every layer
 * @param scaledChannels   channels per LayerNorm whose output is scaled 20–100× (SmoothQuant, Fig. 4)
 * @param shiftedChannels  channels per LayerNorm whose output range is shifted by ±5–20 (RPTQ, Fig. 2)
 * @param shardBytes       split the weights into shards of about this size with an index file; 0 = one file
 */
public record SyntheticOptions(long seed, DType storage, boolean outliers, int scaledChannels,
                               int shiftedChannels, long shardBytes) {

    public static SyntheticOptions defaults() {
        return new SyntheticOptions(1234, DType.F16, false, 4, 12, 0);
    }

    public SyntheticOptions withSeed(long newSeed) {
        return new SyntheticOptions(newSeed, storage, outliers, scaledChannels, shiftedChannels, shardBytes);
    }

    public SyntheticOptions withStorage(DType newStorage) {
        return new SyntheticOptions(seed, newStorage, outliers, scaledChannels, shiftedChannels, shardBytes);
    }

    public SyntheticOptions withOutliers(boolean enabled) {
        return new SyntheticOptions(seed, storage, enabled, scaledChannels, shiftedChannels, shardBytes);
    }

    public SyntheticOptions withShardBytes(long bytes) {
        return new SyntheticOptions(seed, storage, outliers, scaledChannels, shiftedChannels, bytes);
    }
}
