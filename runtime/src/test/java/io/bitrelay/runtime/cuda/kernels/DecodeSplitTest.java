package io.bitrelay.runtime.cuda.kernels;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The decode split choice against what the kernels and the stage's split-K workspace can hold, and against what
 * decode CUDA graphs need: a launch configuration that changes rarely as contexts grow.
 */
@Timeout(60)
class DecodeSplitTest {
    private static final int[] SEQUENCES = {1, 2, 7, 16, 64, 256};
    private static final int[] HEADS = {12, 32, 96};
    private static final int[] MULTIPROCESSORS = {108, 132};
    /** Every context up to here is checked; past the cap, buckets become multiples of it. */
    private static final int MAX_CONTEXT = 20_000;
    /** OPT's context. */
    private static final int OPT_CONTEXT = 2048;

    @Test
    void shouldCoverEveryKeyWithinTheSharedMemoryAndTheWorkspace() {
        for (int sequences : SEQUENCES) {
            for (int heads : HEADS) {
                for (int sms : MULTIPROCESSORS) {
                    for (int context = 1; context <= MAX_CONTEXT; context++) {
                        AttentionKernels.DecodeSplit split = AttentionKernels.decodeSplit(sequences, heads, context, sms);
                        String what = sequences + " sequences × " + heads + " heads, context " + context + ", " + sms + " SMs";
                        assertTrue(split.keysPerSplit() <= AttentionKernels.MAX_KEYS_PER_SPLIT, what);
                        assertEquals(0, split.keysPerSplit() % 32, what + ": keys per split a multiple of 32");
                        assertTrue((long) split.keysPerSplit() * split.maxSplits() >= context, what + ": every key covered");
                        int bucket = AttentionKernels.decodeContextBucket(context);
                        assertTrue((long) split.keysPerSplit() * (split.maxSplits() - 1) < bucket,
                                what + ": no split empty at the bucket's longest context " + bucket);
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

    @Test
    void shouldBucketContextsGeometricallyWithinOneAndAHalfTimes() {
        assertEquals(128, AttentionKernels.decodeContextBucket(1));
        assertEquals(128, AttentionKernels.decodeContextBucket(128));
        assertEquals(192, AttentionKernels.decodeContextBucket(129));
        assertEquals(256, AttentionKernels.decodeContextBucket(193));
        assertEquals(1536, AttentionKernels.decodeContextBucket(1025));
        assertEquals(2048, AttentionKernels.decodeContextBucket(2048));
        assertEquals(4096, AttentionKernels.decodeContextBucket(4096));
        assertEquals(6144, AttentionKernels.decodeContextBucket(4097));
        assertEquals(20_480, AttentionKernels.decodeContextBucket(16_385)); // the cap's next multiple, not 24576
        for (int context = 1; context <= MAX_CONTEXT; context++) {
            int bucket = AttentionKernels.decodeContextBucket(context);
            String what = "context " + context + " → bucket " + bucket;
            assertTrue(bucket >= context, what);
            assertEquals(0, bucket % 64, what + ": a multiple of 64");
            assertTrue(context <= 128 || 2L * bucket < 3L * context, what + ": under 1.5 × the context");
            int capMultiple = (context + AttentionKernels.MAX_KEYS_PER_SPLIT - 1) / AttentionKernels.MAX_KEYS_PER_SPLIT;
            assertTrue(bucket <= capMultiple * AttentionKernels.MAX_KEYS_PER_SPLIT, what + ": past the cap's next multiple");
        }
    }

    @Test
    void shouldChangeTheSplitOnlyAtContextBuckets() {
        for (int sequences : SEQUENCES) {
            for (int heads : HEADS) {
                for (int sms : MULTIPROCESSORS) {
                    for (int context = 1; context <= MAX_CONTEXT; context++) {
                        int bucket = AttentionKernels.decodeContextBucket(context);
                        assertEquals(AttentionKernels.decodeSplit(sequences, heads, bucket, sms),
                                AttentionKernels.decodeSplit(sequences, heads, context, sms),
                                sequences + " sequences × " + heads + " heads, " + sms + " SMs: context " + context
                                        + " splits like its bucket " + bucket);
                    }
                }
            }
        }
    }

    /** Each distinct split is a decode graph to capture: two per doubling of the context past 128, whatever the batch. */
    @Test
    void shouldMakeFewLaunchConfigurationsAsTheContextGrows() {
        int bound = 1 + 2 * (Integer.numberOfTrailingZeros(OPT_CONTEXT) - Integer.numberOfTrailingZeros(128));
        for (int sequences : new int[]{1, 2, 4, 7, 16, 32, 64, 256}) {
            for (int heads : new int[]{12, 32, 40, 56, 96}) {
                for (int sms : MULTIPROCESSORS) {
                    Set<AttentionKernels.DecodeSplit> splits = new HashSet<>();
                    for (int context = 1; context <= OPT_CONTEXT; context++) {
                        splits.add(AttentionKernels.decodeSplit(sequences, heads, context, sms));
                    }
                    assertTrue(splits.size() <= bound, sequences + " sequences × " + heads + " heads, " + sms + " SMs: "
                            + splits.size() + " launch configurations over contexts 1.." + OPT_CONTEXT + ", at most "
                            + bound + " wanted: " + splits);
                }
            }
        }
    }
}
