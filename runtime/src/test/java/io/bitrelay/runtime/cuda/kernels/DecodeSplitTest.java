package io.bitrelay.runtime.cuda.kernels;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The decode split choice against what the kernels and the stage's split-K workspace can hold. */
class DecodeSplitTest {
    private static final int[] SEQUENCES = {1, 2, 7, 16, 64, 256};
    private static final int[] HEADS = {12, 32, 96};
    private static final int[] CONTEXTS = {1, 63, 64, 129, 1024, 2048, 4096, 4097, 9000, 20_000};
    private static final int[] MULTIPROCESSORS = {108, 132};

    @Test
    void shouldCoverEveryKeyWithinTheSharedMemoryAndTheWorkspace() {
        for (int sequences : SEQUENCES) {
            for (int heads : HEADS) {
                for (int context : CONTEXTS) {
                    for (int sms : MULTIPROCESSORS) {
                        AttentionKernels.DecodeSplit split = AttentionKernels.decodeSplit(sequences, heads, context, sms);
                        String what = sequences + " sequences × " + heads + " heads, context " + context + ", " + sms + " SMs";
                        assertTrue(split.keysPerSplit() <= AttentionKernels.MAX_KEYS_PER_SPLIT, what);
                        assertEquals(0, split.keysPerSplit() % 32, what + ": keys per split a multiple of 32");
                        assertTrue((long) split.keysPerSplit() * split.maxSplits() >= context, what + ": every key covered");
                        assertTrue((long) split.keysPerSplit() * (split.maxSplits() - 1) < context, what + ": no empty split");
                        long workspace = AttentionKernels.decodeWorkspaceSplits(sequences, heads, context, sms);
                        assertTrue((long) sequences * split.maxSplits() <= workspace,
                                what + ": " + sequences + " × " + split.maxSplits() + " splits exceed the workspace of " + workspace);
                    }
                }
            }
        }
    }

    @Test
    void shouldSplitOnlyWhereTooFewBlocksWouldRun() {
        // batch 64 × 96 heads already fills an H200 (132 SMs): one split per sequence up to the cap
        assertEquals(1, AttentionKernels.decodeSplit(64, 96, 2048, 132).maxSplits());
        // one sequence: split until about four blocks per multiprocessor
        AttentionKernels.DecodeSplit single = AttentionKernels.decodeSplit(1, 96, 2048, 132);
        assertEquals(6, single.maxSplits());
        assertEquals(384, single.keysPerSplit());
    }
}
