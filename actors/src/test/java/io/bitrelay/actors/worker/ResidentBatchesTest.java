package io.bitrelay.actors.worker;

import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.pipeline.StopRule;
import io.bitrelay.runtime.generate.SamplingParams;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ResidentBatchesTest {
    private static final int EOS = 2;
    private final ResidentBatches batches = new ResidentBatches(64);

    private static MicroBatch.Entry generating(int id, int[] prompt, int maxTokens) {
        return new MicroBatch.Entry(id, prompt, 0, SamplingParams.greedy(), -1, null, new StopRule(maxTokens, 0, true, EOS), 0,
                prompt.length + maxTokens);
    }

    private static MicroBatch joins(long batchId, MicroBatch.Entry... entries) {
        return new MicroBatch(batchId, 0, entries, false);
    }

    private static int[] ids(MicroBatch step) {
        return java.util.Arrays.stream(step.entries()).mapToInt(MicroBatch.Entry::sequenceId).toArray();
    }

    @Test
    void shouldFeedEachMemberItsSampledTokenAtTheNextPosition() {
        MicroBatch first = batches.join(joins(1, generating(5, new int[]{7, 8, 9}, 3))).step();
        assertNotNull(first.entries()[0].firstChunkSampling());
        assertEquals(6, first.entries()[0].kvCapacity());
        MicroBatch second = batches.sampled(1, new int[]{5}, new int[]{40}).step();
        MicroBatch.Entry entry = second.entries()[0];
        assertArrayEquals(new int[]{40}, entry.tokens());
        assertEquals(3, entry.startPosition());
        assertEquals(1, entry.generated());
        assertNull(entry.firstChunkSampling(), "the last stage keeps the sampler from the first step");
        assertEquals(0, entry.kvCapacity(), "the caches were sized at the first step");
        assertEquals(first.step() + 1, second.step());
        MicroBatch third = batches.sampled(1, new int[]{5}, new int[]{41}).step();
        assertEquals(4, third.entries()[0].startPosition());
        assertNull(batches.sampled(1, new int[]{5}, new int[]{42}).step(), "the third token is its last");
        assertEquals(0, batches.residentCount(), "an empty batch retires");
    }

    @Test
    void shouldStopAtEosAndKeepOthersGoing() {
        batches.join(joins(1, generating(1, new int[]{7}, 10), generating(2, new int[]{7}, 10)));
        MicroBatch next = batches.sampled(1, new int[]{1, 2}, new int[]{EOS, 30}).step();
        assertArrayEquals(new int[]{2}, ids(next));
    }

    @Test
    void shouldHoldJoinsUntilTheStepOutComesBackThenRunThemMixedWithDecode() {
        batches.join(joins(1, generating(1, new int[]{7, 7}, 10)));
        ResidentBatches.Next held = batches.join(joins(1, generating(2, new int[]{5, 6, 7}, 10)));
        assertNull(held.step(), "a step of batch 1 is out: one step at a time per batch");
        MicroBatch mixed = batches.sampled(1, new int[]{1}, new int[]{30}).step();
        assertArrayEquals(new int[]{1, 2}, ids(mixed));
        assertEquals(1, mixed.entries()[0].tokens().length);
        assertEquals(3, mixed.entries()[1].tokens().length, "the prompt joins the decode step");
        assertNotNull(batches.join(joins(2, generating(3, new int[]{1}, 4))).step(), "another batch runs at once");
    }

    @Test
    void shouldFeedALongPromptInChunksBesideTheDecodingMembers() {
        batches.join(joins(1, generating(1, new int[]{7}, 10)));
        batches.join(joins(1, generating(2, new int[100], 10)));
        MicroBatch mixed = batches.sampled(1, new int[]{1}, new int[]{30}).step();
        assertArrayEquals(new int[]{1, 2}, ids(mixed));
        assertEquals(63, mixed.entries()[1].tokens().length, "64 rows: one decode token, 63 of the prompt");
        assertTrue(mixed.entries()[1].partialPrompt());
        assertEquals(110, mixed.entries()[1].kvCapacity(), "the caches are sized at the first chunk");
        MicroBatch rest = batches.sampled(1, new int[]{1, 2}, new int[]{31, -1}).step();
        MicroBatch.Entry last = rest.entries()[1];
        assertEquals(37, last.tokens().length);
        assertEquals(63, last.startPosition());
        assertEquals(false, last.partialPrompt(), "the last chunk samples the first token");
        assertEquals(0, last.kvCapacity());
        assertNull(last.firstChunkSampling());
        MicroBatch decode = batches.sampled(1, new int[]{1, 2}, new int[]{32, 40}).step();
        assertArrayEquals(new int[]{40}, decode.entries()[1].tokens());
        assertEquals(100, decode.entries()[1].startPosition());
        assertEquals(1, decode.entries()[1].generated());
    }

    @Test
    void shouldRunAScoredChunkOnce() {
        MicroBatch.Entry chunk = new MicroBatch.Entry(4, new int[]{1, 2, 3}, 0, null, 0, new int[]{2, 3, -1});
        batches.join(joins(1, chunk, generating(5, new int[]{9}, 5)));
        MicroBatch next = batches.sampled(1, new int[]{5, 4}, new int[]{33, -1}).step(); // decoding rows go first
        assertArrayEquals(new int[]{5}, ids(next), "the coordinator sends the next chunk itself");
    }

    @Test
    void shouldConfirmALeaveOnlyWhenNoStepOutHoldsTheSequence() {
        batches.join(joins(1, generating(1, new int[]{7}, 10), generating(2, new int[]{7}, 10)));
        ResidentBatches.Next leave = batches.leave(1, new int[]{2});
        assertEquals(0, leave.left().length, "sequence 2 is in the step out");
        ResidentBatches.Next back = batches.sampled(1, new int[]{1, 2}, new int[]{30, 31});
        assertArrayEquals(new int[]{2}, back.left());
        assertArrayEquals(new int[]{1}, ids(back.step()));
        batches.sampled(1, new int[]{1}, new int[]{32});
        assertArrayEquals(new int[]{9}, batches.leave(7, new int[]{9}).left(), "an unknown batch holds nothing");
    }

    @Test
    void shouldRefuseTokensThatDoNotMatchTheStepOutAndIgnoreADroppedBatch() {
        batches.join(joins(1, generating(1, new int[]{7}, 10)));
        assertThrows(IllegalStateException.class, () -> batches.sampled(1, new int[]{3}, new int[]{30}));
        batches.join(joins(2, generating(4, new int[]{7}, 10)));
        batches.drop(2);
        assertNull(batches.sampled(2, new int[]{4}, new int[]{30}).step());
    }

    @Test
    void shouldFormTheStepAheadFromTokensStillOnTheDeviceAndLearnOfAStopOneStepLate() {
        MicroBatch first = batches.join(joins(1, generating(1, new int[]{7, 8}, 2), generating(2, new int[]{7, 9}, 5))).step();
        assertNotNull(first);
        MicroBatch ahead = batches.ahead(1).step();
        assertNotNull(ahead, "one step out: the next is formed before its tokens come back");
        assertArrayEquals(new int[]{1, 2}, ids(ahead));
        for (MicroBatch.Entry entry : ahead.entries()) {
            assertArrayEquals(new int[]{ResidentBatches.SAMPLED_ON_DEVICE}, entry.tokens());
        }
        assertEquals(2, ahead.entries()[0].startPosition());
        assertEquals(2, ahead.entries()[1].startPosition());
        assertNull(batches.ahead(1).step(), "never more than two steps out");
        assertNull(batches.sampled(1, new int[]{1, 2}, new int[]{EOS, 30}).step(), "the step ahead is still out");
        // sequence 1 ended at the first step; the step ahead computed a row for it that nobody reads
        MicroBatch third = batches.ahead(1).step();
        assertArrayEquals(new int[]{2}, ids(third));
        assertEquals(2, third.entries()[0].generated());
        assertNull(batches.sampled(1, new int[]{1, 2}, new int[]{99, 31}).step());
        MicroBatch fourth = batches.sampled(1, new int[]{2}, new int[]{32}).step();
        assertArrayEquals(new int[]{32}, fourth.entries()[0].tokens(), "no step ahead: the token came from the host");
        assertEquals(4, fourth.entries()[0].startPosition());
    }

    @Test
    void shouldNotRunAheadOfAMemberThatWantsLogprobs() {
        MicroBatch.Entry scored = new MicroBatch.Entry(3, new int[]{7}, 0, SamplingParams.greedy(), 2, null,
                new StopRule(4, 0, true, EOS), 0, 5);
        batches.join(joins(1, generating(1, new int[]{7}, 4), scored));
        assertNull(batches.ahead(1).step(), "its logprobs come from the host, so its step waits for its tokens");
    }

    @Test
    void shouldConfirmALeaveOnlyOnceNoStepOutHoldsTheMember() {
        batches.join(joins(1, generating(1, new int[]{7}, 9), generating(2, new int[]{7}, 9)));
        batches.ahead(1);
        ResidentBatches.Next left = batches.leave(1, new int[]{2});
        assertEquals(0, left.left().length, "two steps out hold it");
        assertEquals(0, batches.sampled(1, new int[]{1, 2}, new int[]{30, 31}).left().length, "the step ahead still does");
        MicroBatch next = batches.ahead(1).step();
        assertArrayEquals(new int[]{1}, ids(next), "it is fed nothing more");
        assertArrayEquals(new int[]{2}, batches.sampled(1, new int[]{1, 2}, new int[]{32, 33}).left());
    }

    @Test
    void shouldGoOnCountingStepsOfABatchMadeAnewAfterItEmptied() {
        MicroBatch first = batches.join(joins(7, generating(1, new int[]{7}, 1))).step();
        assertNull(batches.sampled(7, new int[]{1}, new int[]{30}).step(), "its one token ends it");
        assertEquals(0, batches.residentCount(), "the batch retired");
        // the coordinator placed a sequence in batch 7 before it heard that the batch emptied
        MicroBatch again = batches.join(joins(7, generating(2, new int[]{7}, 3))).step();
        assertTrue(again.step() > first.step(), "a later stage refuses a step number it took before as a replay");
    }
}
