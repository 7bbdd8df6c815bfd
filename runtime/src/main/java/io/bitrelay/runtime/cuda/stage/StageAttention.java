package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.model.opt.OptConfig;

/**
 * Self-attention of one layer for a step, shared by both recipes: the step's keys and values (columns h..3h of
 * the fused qkv buffer) go into each sequence's cache, then one decode launch for the one-token sequences and
 * one prefill launch for the chunks write the heads-concatenated output into {@code buffers.attention}.
 */
final class StageAttention {
    private StageAttention() {
    }

    static void run(StageCompute compute, StageBuffers buffers, OptConfig config, AttentionStep step, int localLayer) {
        int hidden = config.hiddenSize();
        int ldq = 3 * hidden;
        long q = buffers.qkv.address();
        long k = q + (long) hidden * Short.BYTES;
        long v = q + 2L * hidden * Short.BYTES;
        long out = buffers.attention.address();
        compute.attention.append(step.kvFormat(), step.descriptors(localLayer), step.sequences(), k, v, ldq, step.rows(),
                hidden, config.headDim(), hidden, compute.stream);
        if (step.decodeSeqs() > 0) {
            compute.attention.decode(step.kvFormat(), step.descriptors(localLayer), step.decodeSeqs(), config.numHeads(),
                    config.headDim(), q, ldq, hidden, step.split(), buffers.partialO.address(), buffers.partialMl.address(),
                    out, hidden, compute.stream);
        }
        if (step.prefillSeqs() > 0) {
            compute.attention.prefill(step.kvFormat(), step.prefillDescriptors(localLayer), step.prefillSeqs(),
                    step.maxNewTokens(), config.numHeads(), config.headDim(), q, ldq, hidden, out, hidden, compute.stream);
        }
    }
}
