package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.kernels.AttentionKernels;
import io.bitrelay.runtime.cuda.kernels.KvCacheFormat;

/**
 * The attention layout of one step: its {@code rows} hidden rows belong to {@code decodeSeqs} one-token
 * sequences and {@code prefillSeqs} chunks, described per layer by {@code decodeSeqs + prefillSeqs}
 * AttentionSeq records in device memory (decode sequences first), layer after layer from {@code descriptorBase};
 * every cache of the stage is of {@code kvFormat}.
 */
record AttentionStep(int rows, int decodeSeqs, int prefillSeqs, int maxNewTokens, AttentionKernels.DecodeSplit split,
                     long descriptorBase, KvCacheFormat kvFormat) {

    int sequences() {
        return decodeSeqs + prefillSeqs;
    }

    /** Every sequence's record for {@code localLayer} (what kv_cache_append takes). */
    long descriptors(int localLayer) {
        return descriptorBase + (long) localLayer * sequences() * AttentionKernels.DESCRIPTOR_BYTES;
    }

    long prefillDescriptors(int localLayer) {
        return descriptors(localLayer) + (long) decodeSeqs * AttentionKernels.DESCRIPTOR_BYTES;
    }
}
