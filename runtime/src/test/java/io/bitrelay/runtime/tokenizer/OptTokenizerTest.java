package io.bitrelay.runtime.tokenizer;

import io.bitrelay.runtime.TestModels;
import io.bitrelay.runtime.checkpoint.CheckpointException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptTokenizerTest {
    @TempDir
    Path temp;

    @Test
    void shouldPrependBosAndRoundTripAnyText() {
        Path checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
        try (OptTokenizer tokenizer = OptTokenizer.load(checkpoint)) {
            String text = "Hello, wörld! 1867 — naïve ☃ tabs\tand\nlines";
            int[] ids = tokenizer.encode(text);
            assertEquals(2, ids[0], "OPT prompts start with </s>");
            assertEquals(text, tokenizer.decode(ids));
            for (int id : ids) {
                assertTrue(id >= 0 && id < 300);
            }
            assertTrue(tokenizer.encode(" the").length < 1 + " the".length(), "merges should shorten common words");
        }
    }

    @Test
    void shouldEncodeWithoutBosForCorpusWindows() {
        Path checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
        try (OptTokenizer tokenizer = OptTokenizer.load(checkpoint)) {
            String text = " = Robert Smith = \n The film was released in 2000 .";
            int[] withBos = tokenizer.encode(text);
            int[] plain = tokenizer.encodeWithoutSpecialTokens(text);
            assertEquals(withBos.length - 1, plain.length);
            assertArrayEquals(java.util.Arrays.copyOfRange(withBos, 1, withBos.length), plain);
            assertEquals(text, tokenizer.decode(plain));
        }
    }

    @Test
    void shouldNeverTokenizeTextIntoFewerTokensThanItsBytesOverTheLongestSpan() {
        Path checkpoint = TestModels.writeTiny(temp.resolve("tiny"));
        try (OptTokenizer tokenizer = OptTokenizer.load(checkpoint)) {
            int maxBytes = tokenizer.maxBytesPerToken().orElseThrow(() -> new AssertionError("byte-level BPE has a bound"));
            java.util.SplittableRandom random = new java.util.SplittableRandom(16);
            String[] pieces = {"the", " the", "</s>", "<pad>", "aaaa", "\n\n", "ü", "☃", " ", "1867", "=="};
            boolean reached = false;
            for (int text = 0; text < 200; text++) {
                StringBuilder builder = new StringBuilder();
                for (int piece = 1 + random.nextInt(40); piece > 0; piece--) {
                    builder.append(pieces[random.nextInt(pieces.length)]);
                }
                String prompt = builder.toString();
                int bytes = prompt.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
                int tokens = tokenizer.encodeWithoutSpecialTokens(prompt).length;
                assertTrue(tokens >= Math.ceilDiv(bytes, maxBytes), prompt + ": " + tokens + " tokens for " + bytes + " bytes");
                reached |= tokens * maxBytes < 2 * bytes;
            }
            assertTrue(reached, "the bound should be within 2x of some text's tokens, or it refuses little");
        }
    }

    @Test
    void shouldNameMissingTokenizerFile() {
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptTokenizer.load(temp));
        assertTrue(e.getMessage().contains("tokenizer.json"));
    }
}
